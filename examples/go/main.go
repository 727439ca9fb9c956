// A Courier webhook handler in Go, standard library only (net/http, crypto/hmac, net/url).
//
// Courier POSTs each Kafka record here (contract: docs/handlers.md). This handler:
//   - verifies the Standard Webhooks signature when WEBHOOK_SECRET (whsec_...) is set: 401 otherwise;
//   - reads the CloudEvents attributes (ce-*), the Kafka coordinates (kafka-*) and the percent-decoded key;
//   - treats ce-id as the idempotency key: a duplicate is acknowledged (200) without processing it again;
//   - answers 422 for a record it will never accept (JSON body {"poison": true}): Courier dead-letters it;
//   - answers 429 with Retry-After: 1 while MAX_CONCURRENCY pushes are in progress: Courier sends the record
//     again a second later, counts no attempt (never the DLQ) and sends fewer pushes at once.
//
// With COURIER_DELIVERY=batch Courier POSTs many records in one JSON request instead, to the same URL,
// with a courier-batch-size header: this handler answers those too (serveBatch), record by record in
// array order, with the same signature check, poison rule, ce-id store and MAX_CONCURRENCY, and lists
// the records that failed in a 200 answer {"failures": [...]}.
//
// It writes one JSON line per outcome to stdout (per record for a batch).
//
//	go build -o bin/handler . && PORT=3000 WEBHOOK_SECRET=whsec_... ./bin/handler
//
// Env: PORT (0 picks a free port), HOST (default 127.0.0.1: Courier runs beside the app), WEBHOOK_SECRET,
// MAX_CONCURRENCY (requests processed at once; one more gets the 429; default 16),
// PROCESSING_DELAY_MS (simulated work; the tests use it to hold requests and reach the limit).
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Standard Webhooks: reject timestamps further than this from now.
const tolerance = 5 * time.Minute

type handler struct {
	signingKey      []byte        // nil: signatures are not checked
	capacity        chan struct{} // a semaphore of MAX_CONCURRENCY slots: net/http serves each request on its own goroutine
	processingDelay time.Duration

	mu sync.Mutex
	// ce-id -> "processing" | "done". In memory for the example: a real app keeps this where its
	// effects live, e.g. a unique constraint on ce-id in the same database transaction as its work.
	seen map[string]string
}

var stdout = json.NewEncoder(os.Stdout)
var stdoutMu sync.Mutex

func emit(event string, fields map[string]any) {
	line := map[string]any{"event": event}
	for k, v := range fields {
		line[k] = v
	}
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	_ = stdout.Encode(line)
}

func answer(w http.ResponseWriter, status int, body map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func intHeader(r *http.Request, name string) any {
	n, err := strconv.ParseInt(r.Header.Get(name), 10, 64)
	if err != nil {
		return nil
	}
	return n
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		answer(w, http.StatusMethodNotAllowed, map[string]any{"error": "POST only"})
		return
	}
	body, err := io.ReadAll(r.Body) // the record value, unchanged
	if err != nil {
		return
	}
	if r.Header.Get("courier-batch-size") != "" { // COURIER_DELIVERY=batch: same URL, JSON body
		h.serveBatch(w, r, body)
		return
	}
	ceID := r.Header.Get("ce-id") // the idempotency key: stable across attempts
	record := map[string]any{
		"ce_id":     ceID,
		"topic":     r.Header.Get("kafka-topic"),
		"partition": intHeader(r, "kafka-partition"),
		"offset":    intHeader(r, "kafka-offset"),
	}
	if h.signingKey != nil && !h.signatureValid(r.Header, body) {
		emit("bad_signature", record) // unverified values, for the log only
		// Courier holds the record and reports app_refused: never dead-lettered.
		answer(w, http.StatusUnauthorized, map[string]any{"error": "invalid signature"})
		return
	}

	select { // take a slot without waiting: over the limit, say so rather than queue or fail
	case h.capacity <- struct{}{}:
		defer func() { <-h.capacity }()
	default:
		emit("overloaded", record)
		// 429 is overload to Courier (so is 503, but only with Retry-After): no attempt, no DLQ, fewer pushes.
		w.Header().Set("Retry-After", "1") // the record comes again in 1 s
		answer(w, http.StatusTooManyRequests, map[string]any{"error": fmt.Sprintf("over the limit (MAX_CONCURRENCY=%d)", cap(h.capacity))})
		return
	}

	if isPoison(body) {
		emit("rejected", with(record, "status", 422))
		answer(w, http.StatusUnprocessableEntity, map[string]any{"error": "cannot process this record"}) // dead-lettered at once
		return
	}

	h.mu.Lock() // check and claim in one step: two deliveries of one event may race
	state := h.seen[ceID]
	if state == "" {
		h.seen[ceID] = "processing"
	}
	h.mu.Unlock()
	switch state {
	case "done":
		emit("duplicate", record)
		answer(w, http.StatusOK, map[string]any{"duplicate": true}) // acknowledged, not processed again
		return
	case "processing": // another delivery of this event is being processed right now
		emit("in_progress", record)
		w.Header().Set("Retry-After", "1") // not 409: any other 4xx dead-letters
		answer(w, http.StatusServiceUnavailable, map[string]any{"error": "in progress"})
		return
	}

	if err := h.process(r, record, body); err != nil {
		h.mu.Lock()
		delete(h.seen, ceID) // not done: a retry must process it
		h.mu.Unlock()
		emit("failed", with(record, "error", err.Error()))
		answer(w, http.StatusInternalServerError, map[string]any{"error": "failed"}) // Courier retries
		return
	}
	h.mu.Lock()
	h.seen[ceID] = "done"
	h.mu.Unlock()
	answer(w, http.StatusOK, map[string]any{"ok": true})
}

// process is where the real work goes. It runs once per ce-id.
func (h *handler) process(r *http.Request, record map[string]any, body []byte) error {
	var key any // JSON null for a null key (no kafka-key header)
	if values, present := r.Header["Kafka-Key"]; present {
		raw, err := url.PathUnescape(values[0]) // percent-encoded bytes; PathUnescape keeps '+' as '+'
		if err != nil {
			return err
		}
		key = hex.EncodeToString([]byte(raw))
	}
	time.Sleep(h.processingDelay)
	emit("processed", with(record,
		"ce_source", r.Header.Get("ce-source"),
		"ce_type", r.Header.Get("ce-type"),
		"key", key,
		"bytes", len(body),
		"attempt", intHeader(r, "courier-attempt"),
	))
	return nil
}

// batchRecord is one record of a batch body. Offsets are strings: they can exceed 2^53.
type batchRecord struct {
	ID          string          `json:"id"` // the record's ce-id: the idempotency key (webhook-id only names the batch)
	Topic       string          `json:"topic"`
	Partition   int32           `json:"partition"`
	Offset      string          `json:"offset"`
	Key         *string         `json:"key"`         // base64; nil for a null key
	Value       json.RawMessage `json:"value"`       // the JSON value (content type application/json or *+json)
	ValueBase64 *string         `json:"valueBase64"` // any other value; neither for a tombstone
	Attempt     int             `json:"attempt"`
}

// batchFailure is a record listed in the answer; a record not listed is acknowledged.
type batchFailure struct {
	ID           string `json:"id"`
	Status       int    `json:"status"`
	RetryAfterMs int    `json:"retryAfterMs,omitempty"`
	Reason       string `json:"reason,omitempty"`
}

// serveBatch answers a batch: {"records": [...]} in one request, answered 200 with the records that
// failed listed by id.
func (h *handler) serveBatch(w http.ResponseWriter, r *http.Request, body []byte) {
	batch := map[string]any{"ce_id": r.Header.Get("webhook-id"), "batch": intHeader(r, "courier-batch-size")}
	if h.signingKey != nil && !h.signatureValid(r.Header, body) { // the signature covers the whole body
		// One line: a body is not parsed before it is verified. Courier holds the batch, never dead-letters it.
		emit("bad_signature", batch)
		answer(w, http.StatusUnauthorized, map[string]any{"error": "invalid signature"})
		return
	}
	var parsed struct {
		Records []batchRecord `json:"records"`
	}
	err := json.Unmarshal(body, &parsed)
	if err == nil && parsed.Records == nil {
		err = errors.New("no records array")
	}
	for _, item := range parsed.Records {
		if err == nil && item.ID == "" {
			err = errors.New("records must be objects with an id")
		}
	}
	if err != nil {
		emit("rejected", with(batch, "status", 400, "error", err.Error()))
		// Courier splits the batch until the record at fault is alone.
		answer(w, http.StatusBadRequest, map[string]any{"error": "not a batch"})
		return
	}
	records := parsed.Records

	select { // a batch takes one slot, as a single record does
	case h.capacity <- struct{}{}:
		defer func() { <-h.capacity }()
	default:
		for _, item := range records {
			emit("overloaded", item.coordinates(len(records)))
		}
		w.Header().Set("Retry-After", "1") // the whole batch comes again in 1 s
		answer(w, http.StatusTooManyRequests, map[string]any{"error": fmt.Sprintf("over the limit (MAX_CONCURRENCY=%d)", cap(h.capacity))})
		return
	}

	failures := []batchFailure{} // [] rather than null: {"failures": []} acknowledges every record
	// Keys with a record listed for a retry: their later records wait for it (see batchRecord).
	held := map[string]bool{}
	for _, item := range records { // in array order: the partition's offset order
		if failure := h.batchRecord(item, len(records), held); failure != nil {
			failures = append(failures, *failure)
		}
	}
	answer(w, http.StatusOK, map[string]any{"failures": failures})
}

// batchRecord handles one record of a batch as ServeHTTP handles one record: nil when it is done,
// else its failure.
func (h *handler) batchRecord(item batchRecord, size int, held map[string]bool) *batchFailure {
	record := item.coordinates(size)
	// Its key's order: a later record of a key whose earlier record comes again must not overtake it.
	lane := fmt.Sprintf("%s/%d/", item.Topic, item.Partition)
	if item.Key != nil {
		lane += "k" + *item.Key
	}
	if held[lane] {
		emit("held", record)
		// Listed, not processed: a record left out of the listing would be acknowledged. 503 with
		// retryAfterMs is overload to Courier: it comes again after the record it waits for, at no attempt.
		reason := "held behind an earlier record of its key"
		return &batchFailure{ID: item.ID, Status: http.StatusServiceUnavailable, RetryAfterMs: 1000, Reason: reason}
	}

	value := []byte(item.Value) // JSON: the value's own text
	if len(item.Value) == 0 && item.ValueBase64 != nil {
		decoded, err := base64.StdEncoding.DecodeString(*item.ValueBase64)
		if err != nil {
			emit("rejected", with(record, "status", 422))
			return &batchFailure{ID: item.ID, Status: http.StatusUnprocessableEntity, Reason: "valueBase64 is not base64"}
		}
		value = decoded
	}
	if isPoison(value) {
		emit("rejected", with(record, "status", 422))
		// The reason goes to the DLQ record (error_message, app_response): say why, briefly.
		return &batchFailure{ID: item.ID, Status: http.StatusUnprocessableEntity, Reason: "cannot process this record"}
	}

	h.mu.Lock() // the same store as for single records: check and claim in one step
	state := h.seen[item.ID]
	if state == "" {
		h.seen[item.ID] = "processing"
	}
	h.mu.Unlock()
	switch state {
	case "done":
		emit("duplicate", record)
		return nil // acknowledged, not processed again
	case "processing": // another delivery of this event is being processed right now
		emit("in_progress", record)
		held[lane] = true
		return &batchFailure{ID: item.ID, Status: http.StatusServiceUnavailable, RetryAfterMs: 1000, Reason: "in progress"}
	}
	if err := h.processBatchRecord(item, record, value); err != nil {
		h.mu.Lock()
		delete(h.seen, item.ID) // not done: a retry must process it
		h.mu.Unlock()
		emit("failed", with(record, "error", err.Error()))
		held[lane] = true
		return &batchFailure{ID: item.ID, Status: http.StatusInternalServerError, Reason: "failed"} // retried (an attempt)
	}
	h.mu.Lock()
	h.seen[item.ID] = "done"
	h.mu.Unlock()
	return nil
}

// processBatchRecord is where the real work for a record of a batch goes, as in process. It runs
// once per id. value is the JSON text (item.Value set), the bytes, or nil for a tombstone.
func (h *handler) processBatchRecord(item batchRecord, record map[string]any, value []byte) error {
	var key any // JSON null for a null key
	if item.Key != nil {
		raw, err := base64.StdEncoding.DecodeString(*item.Key)
		if err != nil {
			return err
		}
		key = hex.EncodeToString(raw)
	}
	var size any = len(value)
	if len(item.Value) > 0 {
		size = nil // a JSON value: the contract gives its parsed value, not the record's bytes
	}
	time.Sleep(h.processingDelay)
	emit("processed", with(record, "key", key, "bytes", size, "attempt", item.Attempt))
	return nil
}

// coordinates are a batch record's fields for the event lines: those of a single record, plus the
// batch's size.
func (item batchRecord) coordinates(size int) map[string]any {
	var offset any
	if n, err := strconv.ParseInt(item.Offset, 10, 64); err == nil {
		offset = n
	}
	return map[string]any{"ce_id": item.ID, "topic": item.Topic, "partition": item.Partition, "offset": offset, "batch": size}
}

// signatureValid checks Standard Webhooks: v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")>.
func (h *handler) signatureValid(header http.Header, body []byte) bool {
	id, timestamp, signatures := header.Get("webhook-id"), header.Get("webhook-timestamp"), header.Get("webhook-signature")
	seconds, err := strconv.ParseInt(timestamp, 10, 64)
	if id == "" || signatures == "" || err != nil {
		return false
	}
	if age := time.Since(time.Unix(seconds, 0)); age > tolerance || age < -tolerance {
		return false
	}
	mac := hmac.New(sha256.New, h.signingKey)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	expected := mac.Sum(nil)
	for _, candidate := range strings.Split(signatures, " ") { // several during a secret rotation
		version, value, _ := strings.Cut(candidate, ",")
		signature, err := base64.StdEncoding.DecodeString(value)
		if version == "v1" && err == nil && hmac.Equal(signature, expected) { // constant time
			return true
		}
	}
	return false
}

// isPoison is this app's own rule for a record it can never handle.
func isPoison(body []byte) bool {
	var value struct {
		Poison bool `json:"poison"`
	}
	return json.Unmarshal(body, &value) == nil && value.Poison // not JSON: the value is opaque bytes here
}

func with(record map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(record)+len(kv)/2)
	for k, v := range record {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func envInt(name string, fallback int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return fallback
}

func main() {
	h := &handler{
		capacity:        make(chan struct{}, envInt("MAX_CONCURRENCY", 16)),
		processingDelay: time.Duration(envInt("PROCESSING_DELAY_MS", 0)) * time.Millisecond,
		seen:            map[string]string{},
	}
	if secret := os.Getenv("WEBHOOK_SECRET"); secret != "" {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		if err != nil || len(key) == 0 {
			log.Fatalf("WEBHOOK_SECRET must be whsec_ followed by base64: %v", err)
		}
		h.signingKey = key
	}
	host := os.Getenv("HOST")
	if host == "" {
		host = "127.0.0.1"
	}
	listener, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(envInt("PORT", 3000))))
	if err != nil {
		log.Fatal(err)
	}
	emit("listening", map[string]any{"port": listener.Addr().(*net.TCPAddr).Port, "verifying": h.signingKey != nil})
	server := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(server.Serve(listener))
}
