package dev.courier.examples;

import com.sun.net.httpserver.Headers;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * A Courier webhook handler in Java 17, JDK only (com.sun.net.httpserver, javax.crypto).
 *
 * <p>Courier POSTs each Kafka record here (contract: docs/handlers.md). This handler:
 *
 * <ul>
 *   <li>verifies the Standard Webhooks signature when WEBHOOK_SECRET (whsec_...) is set: 401 otherwise;
 *   <li>reads the CloudEvents attributes (ce-*), the Kafka coordinates (kafka-*) and the percent-decoded key;
 *   <li>treats ce-id as the idempotency key: a duplicate is acknowledged (200) without processing it again;
 *   <li>answers 422 for a record it will never accept (JSON body {"poison": true}): Courier dead-letters it;
 *   <li>answers 429 with Retry-After: 1 while MAX_CONCURRENCY pushes are in progress: Courier sends the
 *       record again a second later, counts no attempt (never the DLQ) and sends fewer pushes at once.
 * </ul>
 *
 * <p>With COURIER_DELIVERY=batch Courier POSTs many records in one JSON request instead, to the same
 * URL, with a courier-batch-size header: this handler answers those too ({@link #handleBatch}), record
 * by record in array order, with the same signature check, poison rule, ce-id store and
 * MAX_CONCURRENCY, and lists the records that failed in a 200 answer {"failures": [...]}. It reads the
 * JSON with {@link Json}, a minimal reader: the JDK has none.
 *
 * <p>It writes one JSON line per outcome to stdout (per record for a batch). Env: PORT (0 picks a free
 * port), HOST (default 127.0.0.1: Courier runs beside the app), WEBHOOK_SECRET, MAX_CONCURRENCY
 * (requests processed at once; one more gets the 429; default 16), PROCESSING_DELAY_MS (simulated work;
 * the tests use it to hold requests and reach the limit).
 */
public final class Handler {
  /** Standard Webhooks: reject timestamps further than this from now. */
  private static final long TOLERANCE_SECONDS = 5 * 60;

  private final byte[] signingKey; // null: signatures are not checked
  /** MAX_CONCURRENCY slots, shared by the server's threads (one per request). */
  private final Semaphore capacity;
  private final int maxConcurrency;
  private final long processingDelayMs;
  /**
   * ce-id -> "processing" | "done". In memory for the example: a real app keeps this where its effects
   * live, e.g. a unique constraint on ce-id in the same database transaction as the work it does.
   */
  private final Map<String, String> seen = new ConcurrentHashMap<>();

  Handler(byte[] signingKey, int maxConcurrency, long processingDelayMs) {
    this.signingKey = signingKey;
    this.capacity = new Semaphore(maxConcurrency);
    this.maxConcurrency = maxConcurrency;
    this.processingDelayMs = processingDelayMs;
  }

  void handle(HttpExchange exchange) throws IOException {
    try (exchange) {
      if (!exchange.getRequestMethod().equals("POST")) {
        answer(exchange, 405, "{\"error\":\"POST only\"}", null);
        return;
      }
      Headers headers = exchange.getRequestHeaders(); // case-insensitive
      byte[] body = exchange.getRequestBody().readAllBytes(); // the record value, unchanged
      if (headers.getFirst("courier-batch-size") != null) { // COURIER_DELIVERY=batch: same URL, JSON body
        handleBatch(exchange, headers, body);
        return;
      }
      String ceId = header(headers, "ce-id", ""); // the idempotency key: stable across attempts
      Map<String, Object> record = new LinkedHashMap<>();
      record.put("ce_id", ceId);
      record.put("topic", headers.getFirst("kafka-topic"));
      record.put("partition", longOrNull(headers.getFirst("kafka-partition")));
      record.put("offset", longOrNull(headers.getFirst("kafka-offset")));

      if (signingKey != null && !signatureValid(headers, body)) {
        emit("bad_signature", record); // unverified values, for the log only
        // Courier holds the record and reports app_refused: never dead-lettered.
        answer(exchange, 401, "{\"error\":\"invalid signature\"}", null);
        return;
      }
      if (!capacity.tryAcquire()) { // over the limit, without waiting: say so rather than queue or fail
        emit("overloaded", record);
        // 429 is overload to Courier (so is 503, but only with Retry-After): no attempt, no DLQ, fewer pushes.
        String error = "{\"error\":\"over the limit (MAX_CONCURRENCY=" + maxConcurrency + ")\"}";
        answer(exchange, 429, error, "1"); // the record comes again in 1 s
        return;
      }
      try {
        if (isPoison(body)) {
          emit("rejected", with(record, "status", 422));
          answer(exchange, 422, "{\"error\":\"cannot process this record\"}", null); // dead-lettered at once
          return;
        }
        // putIfAbsent checks and claims in one step: two deliveries of one event may race.
        String state = seen.putIfAbsent(ceId, "processing");
        if ("done".equals(state)) {
          emit("duplicate", record);
          answer(exchange, 200, "{\"duplicate\":true}", null); // acknowledged, not processed again
          return;
        }
        if ("processing".equals(state)) { // another delivery of this event is being processed right now
          emit("in_progress", record);
          answer(exchange, 503, "{\"error\":\"in progress\"}", "1"); // not 409: any other 4xx dead-letters
          return;
        }
        try {
          process(headers, record, body);
        } catch (Exception error) {
          seen.remove(ceId); // not done: a retry must process it
          emit("failed", with(record, "error", String.valueOf(error)));
          answer(exchange, 500, "{\"error\":\"failed\"}", null); // Courier retries
          return;
        }
        seen.put(ceId, "done");
        answer(exchange, 200, "{\"ok\":true}", null);
      } finally {
        capacity.release();
      }
    }
  }

  /** The real work goes here. It runs once per ce-id. */
  private void process(Headers headers, Map<String, Object> record, byte[] body) throws InterruptedException {
    String encodedKey = headers.getFirst("kafka-key"); // percent-encoded bytes; absent for a null key
    byte[] key = encodedKey == null ? null : percentDecode(encodedKey);
    Thread.sleep(processingDelayMs);
    Map<String, Object> line = with(record, "ce_source", headers.getFirst("ce-source"));
    line.put("ce_type", headers.getFirst("ce-type"));
    line.put("key", key == null ? null : HexFormat.of().formatHex(key));
    line.put("bytes", body.length);
    line.put("attempt", longOrNull(headers.getFirst("courier-attempt")));
    emit("processed", line);
  }

  /** A batch: {"records": [...]} in one request, answered 200 with the records that failed listed by id. */
  private void handleBatch(HttpExchange exchange, Headers headers, byte[] body) throws IOException {
    Map<String, Object> batch = new LinkedHashMap<>();
    batch.put("ce_id", header(headers, "webhook-id", ""));
    batch.put("batch", longOrNull(headers.getFirst("courier-batch-size")));
    if (signingKey != null && !signatureValid(headers, body)) { // the signature covers the whole body
      emit("bad_signature", batch); // one line: a body is not parsed before it is verified
      answer(exchange, 401, "{\"error\":\"invalid signature\"}", null); // Courier holds the batch, never dead-letters it
      return;
    }
    List<Map<String, Object>> records;
    try {
      records = batchRecords(body);
    } catch (IllegalArgumentException | CharacterCodingException error) {
      Map<String, Object> line = with(batch, "status", 400);
      line.put("error", error.getMessage());
      emit("rejected", line);
      answer(exchange, 400, "{\"error\":\"not a batch\"}", null); // Courier splits it until the record at fault is alone
      return;
    }

    if (!capacity.tryAcquire()) { // a batch takes one slot, as a single record does
      for (Map<String, Object> item : records) emit("overloaded", coordinates(item, records.size()));
      String error = "{\"error\":\"over the limit (MAX_CONCURRENCY=" + maxConcurrency + ")\"}";
      answer(exchange, 429, error, "1"); // the whole batch comes again in 1 s
      return;
    }
    try {
      List<String> failures = new ArrayList<>(); // each a JSON object
      // Keys with a record listed for a retry: their later records wait for it (see batchRecord).
      Set<List<Object>> held = new HashSet<>();
      for (Map<String, Object> item : records) { // in array order: the partition's offset order
        String failure = batchRecord(item, records.size(), held);
        if (failure != null) failures.add(failure);
      }
      // A record not listed is acknowledged; {"failures": []} (or an empty body) acknowledges them all.
      answer(exchange, 200, "{\"failures\":[" + String.join(",", failures) + "]}", null);
    } finally {
      capacity.release();
    }
  }

  /** One record of a batch, as {@link #handle} handles one record: null when it is done, else its failure. */
  private String batchRecord(Map<String, Object> item, int size, Set<List<Object>> held) {
    Map<String, Object> record = coordinates(item, size);
    String id = (String) item.get("id"); // the record's ce-id: the idempotency key (webhook-id only names the batch)
    // Its key's order: a later record of a key whose earlier record comes again must not overtake it.
    List<Object> lane = Arrays.asList(item.get("topic"), item.get("partition"), item.get("key"));
    if (held.contains(lane)) {
      emit("held", record);
      // Listed, not processed: a record left out of the listing would be acknowledged. 503 with
      // retryAfterMs is overload to Courier: it comes again after the record it waits for, at no attempt.
      return failure(id, 503, 1000, "held behind an earlier record of its key");
    }

    boolean poison = item.containsKey("value") // JSON (application/json or *+json): parsed already
        ? isPoisonValue(item.get("value"))
        : isPoison(base64(item.get("valueBase64"))); // any other bytes; neither for a tombstone
    if (poison) {
      emit("rejected", with(record, "status", 422));
      // The reason goes to the DLQ record (error_message, app_response): say why, briefly.
      return failure(id, 422, null, "cannot process this record");
    }

    String state = seen.putIfAbsent(id, "processing"); // the same store as for single records
    if ("done".equals(state)) {
      emit("duplicate", record);
      return null; // acknowledged, not processed again
    }
    if ("processing".equals(state)) { // another delivery of this event is being processed right now
      emit("in_progress", record);
      held.add(lane);
      return failure(id, 503, 1000, "in progress");
    }
    try {
      processBatchRecord(item, record);
    } catch (Exception error) {
      seen.remove(id); // not done: a retry must process it
      emit("failed", with(record, "error", String.valueOf(error)));
      held.add(lane);
      return failure(id, 500, null, "failed"); // Courier retries it (an attempt)
    }
    seen.put(id, "done");
    return null;
  }

  /** The real work for a record of a batch goes here, as in {@link #process}. It runs once per id. */
  private void processBatchRecord(Map<String, Object> item, Map<String, Object> record) throws InterruptedException {
    byte[] key = item.get("key") == null ? null : base64(item.get("key")); // base64; null for a null key
    Object size; // the value's bytes; null for a parsed JSON value (item.get("value")): its bytes are not kept
    if (item.containsKey("value")) size = null;
    else size = base64(item.get("valueBase64")).length; // 0 for a tombstone
    Thread.sleep(processingDelayMs);
    Map<String, Object> line = with(record, "key", key == null ? null : HexFormat.of().formatHex(key));
    line.put("bytes", size);
    line.put("attempt", item.get("attempt"));
    emit("processed", line);
  }

  /** The body's records: objects with an id, or an exception. */
  @SuppressWarnings("unchecked")
  private static List<Map<String, Object>> batchRecords(byte[] body) throws CharacterCodingException {
    Object parsed = Json.parse(utf8(body));
    if (parsed instanceof Map<?, ?> batch && batch.get("records") instanceof List<?> records) {
      for (Object item : records) {
        if (!(item instanceof Map<?, ?> record && record.get("id") instanceof String)) {
          throw new IllegalArgumentException("records must be objects with an id");
        }
      }
      return (List<Map<String, Object>>) records;
    }
    throw new IllegalArgumentException("no records array");
  }

  /** A batch record's fields for the event lines: those of a single record, plus the batch's size. */
  private static Map<String, Object> coordinates(Map<String, Object> item, int size) {
    Map<String, Object> record = new LinkedHashMap<>();
    record.put("ce_id", item.get("id"));
    record.put("topic", item.get("topic"));
    record.put("partition", item.get("partition"));
    // A string in the body: offsets can exceed 2^53.
    record.put("offset", item.get("offset") instanceof String offset ? longOrNull(offset) : null);
    record.put("batch", size);
    return record;
  }

  /** A listed failure, as JSON. */
  private static String failure(String id, int status, Integer retryAfterMs, String reason) {
    StringBuilder out = new StringBuilder("{\"id\":").append(quote(id)).append(",\"status\":").append(status);
    if (retryAfterMs != null) out.append(",\"retryAfterMs\":").append(retryAfterMs);
    return out.append(",\"reason\":").append(quote(reason)).append('}').toString();
  }

  private static byte[] base64(Object text) {
    return text instanceof String encoded ? Base64.getDecoder().decode(encoded) : new byte[0];
  }

  /** This app's own rule for a record it can never handle. */
  static boolean isPoison(byte[] body) {
    try {
      return isPoisonValue(Json.parse(utf8(body)));
    } catch (IllegalArgumentException | CharacterCodingException notJson) {
      return false; // not JSON: this example treats the value as opaque bytes
    }
  }

  /** The same rule on a value already parsed (a batch carries JSON values parsed). */
  static boolean isPoisonValue(Object value) {
    return value instanceof Map<?, ?> object && Boolean.TRUE.equals(object.get("poison"));
  }

  /** Strict UTF-8: bytes that are not UTF-8 are not JSON text (new String would replace them). */
  private static String utf8(byte[] bytes) throws CharacterCodingException {
    return StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(bytes)).toString();
  }

  /** Standard Webhooks: v1,&lt;base64 HMAC-SHA256(key, "&lt;webhook-id&gt;.&lt;webhook-timestamp&gt;.&lt;body&gt;")&gt;. */
  private boolean signatureValid(Headers headers, byte[] body) {
    String id = headers.getFirst("webhook-id");
    String timestamp = headers.getFirst("webhook-timestamp");
    String signatures = headers.getFirst("webhook-signature");
    Long seconds = longOrNull(timestamp);
    if (id == null || signatures == null || seconds == null) return false;
    if (Math.abs(System.currentTimeMillis() / 1000 - seconds) > TOLERANCE_SECONDS) return false;
    byte[] expected;
    try {
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(new SecretKeySpec(signingKey, "HmacSHA256"));
      mac.update((id + "." + timestamp + ".").getBytes(StandardCharsets.UTF_8));
      expected = mac.doFinal(body); // the raw bytes: a record value need not be text
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
    for (String candidate : signatures.split(" ")) { // several during a secret rotation
      int comma = candidate.indexOf(',');
      if (comma < 0 || !candidate.substring(0, comma).equals("v1")) continue;
      try {
        byte[] signature = Base64.getDecoder().decode(candidate.substring(comma + 1));
        if (MessageDigest.isEqual(signature, expected)) return true; // constant time
      } catch (IllegalArgumentException notBase64) {
        // try the next one
      }
    }
    return false;
  }

  /**
   * kafka-key is percent-encoded bytes. URLDecoder would not do: it decodes to text in a charset and
   * turns '+' into a space; a key can be any bytes.
   */
  static byte[] percentDecode(String encoded) {
    ByteArrayOutputStream out = new ByteArrayOutputStream(encoded.length());
    for (int i = 0; i < encoded.length(); i++) {
      char c = encoded.charAt(i);
      if (c == '%' && i + 2 < encoded.length() && isHex(encoded.charAt(i + 1)) && isHex(encoded.charAt(i + 2))) {
        out.write(Integer.parseInt(encoded.substring(i + 1, i + 3), 16));
        i += 2;
      } else {
        out.write(c);
      }
    }
    return out.toByteArray();
  }

  private static boolean isHex(char c) {
    return Character.digit(c, 16) >= 0 && c < 128;
  }

  private static void answer(HttpExchange exchange, int status, String json, String retryAfter) throws IOException {
    byte[] bytes = json.getBytes(StandardCharsets.UTF_8);
    exchange.getResponseHeaders().set("Content-Type", "application/json");
    if (retryAfter != null) exchange.getResponseHeaders().set("Retry-After", retryAfter);
    exchange.sendResponseHeaders(status, bytes.length);
    try (OutputStream out = exchange.getResponseBody()) {
      out.write(bytes);
    }
  }

  private static String header(Headers headers, String name, String fallback) {
    String value = headers.getFirst(name);
    return value == null ? fallback : value;
  }

  private static Long longOrNull(String text) {
    if (text == null || text.isEmpty() || !text.chars().allMatch(c -> c >= '0' && c <= '9')) return null;
    try {
      return Long.parseLong(text);
    } catch (NumberFormatException tooLong) {
      return null;
    }
  }

  private static Map<String, Object> with(Map<String, Object> record, String name, Object value) {
    Map<String, Object> out = new LinkedHashMap<>(record);
    out.put(name, value);
    return out;
  }

  // JSON lines on stdout: the JDK has no JSON writer either, so a minimal one for flat objects.
  private static synchronized void emit(String event, Map<String, Object> fields) {
    StringBuilder line = new StringBuilder("{\"event\":").append(quote(event));
    for (Map.Entry<String, Object> field : fields.entrySet()) {
      line.append(',').append(quote(field.getKey())).append(':');
      Object value = field.getValue();
      if (value == null) line.append("null");
      else if (value instanceof Number || value instanceof Boolean) line.append(value);
      else line.append(quote(value.toString()));
    }
    System.out.println(line.append('}'));
    System.out.flush();
  }

  private static String quote(String text) {
    StringBuilder out = new StringBuilder("\"");
    for (char c : text.toCharArray()) {
      switch (c) {
        case '"' -> out.append("\\\"");
        case '\\' -> out.append("\\\\");
        default -> {
          if (c < 0x20) out.append(String.format("\\u%04x", (int) c));
          else out.append(c);
        }
      }
    }
    return out.append('"').toString();
  }

  private static long envLong(String name, long fallback) {
    String value = System.getenv(name);
    return value == null || value.isEmpty() ? fallback : Long.parseLong(value);
  }

  public static void main(String[] args) throws IOException {
    String secret = System.getenv("WEBHOOK_SECRET");
    byte[] key = null;
    if (secret != null && !secret.isEmpty()) {
      key = Base64.getDecoder().decode(secret.startsWith("whsec_") ? secret.substring(6) : secret);
    }
    Handler handler = new Handler(key, (int) envLong("MAX_CONCURRENCY", 16), envLong("PROCESSING_DELAY_MS", 0));
    String host = System.getenv().getOrDefault("HOST", "127.0.0.1");
    HttpServer server = HttpServer.create(new InetSocketAddress(host, (int) envLong("PORT", 3000)), 0);
    server.createContext("/", handler::handle);
    server.setExecutor(Executors.newCachedThreadPool()); // MAX_CONCURRENCY bounds the work, not the threads
    server.start();
    emit("listening", Map.of("port", server.getAddress().getPort(), "verifying", key != null));
  }
}
