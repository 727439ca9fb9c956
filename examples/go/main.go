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
// It writes one JSON line per outcome to stdout.
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
