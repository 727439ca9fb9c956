package dev.courier.examples;

import com.sun.net.httpserver.Headers;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.Base64;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.regex.Pattern;
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
 * <p>It writes one JSON line per outcome to stdout. Env: PORT (0 picks a free port), HOST (default
 * 127.0.0.1: Courier runs beside the app), WEBHOOK_SECRET, MAX_CONCURRENCY (requests processed at
 * once; one more gets the 429; default 16), PROCESSING_DELAY_MS (simulated work; the tests use it to hold
 * requests and reach the limit).
 */
public final class Handler {
  /** Standard Webhooks: reject timestamps further than this from now. */
  private static final long TOLERANCE_SECONDS = 5 * 60;
  /** The JDK has no JSON parser: a real app would use Jackson or Gson to read the body. */
  private static final Pattern POISON = Pattern.compile("\"poison\"\\s*:\\s*true");

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
        if (POISON.matcher(new String(body, StandardCharsets.UTF_8)).find()) {
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
