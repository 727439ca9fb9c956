package dev.courier.examples;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A minimal JSON reader (RFC 8259), because the JDK has none: a real app would use Jackson or Gson.
 * Objects become a {@code LinkedHashMap} (a member with the value null is present, with null),
 * arrays a {@code List}, numbers a {@code Long}, {@code BigInteger} or {@code BigDecimal}, and the rest
 * {@code String}, {@code Boolean} or null. Anything else, nesting deeper than {@link #MAX_DEPTH}
 * included, throws {@link IllegalArgumentException}.
 */
final class Json {
  /** Recursion depth: far more than a batch body needs, far less than a thread's stack holds. */
  static final int MAX_DEPTH = 512;

  private final String text;
  private int at;

  private Json(String text) {
    this.text = text;
  }

  static Object parse(String text) {
    Json json = new Json(text);
    Object value = json.value(0);
    json.whitespace();
    if (json.at != text.length()) throw json.error("text after the value");
    return value;
  }

  private Object value(int depth) {
    if (depth > MAX_DEPTH) throw error("nested deeper than " + MAX_DEPTH);
    whitespace();
    if (at >= text.length()) throw error("a value expected");
    char c = text.charAt(at);
    return switch (c) {
      case '{' -> object(depth);
      case '[' -> array(depth);
      case '"' -> string();
      case 't' -> literal("true", Boolean.TRUE);
      case 'f' -> literal("false", Boolean.FALSE);
      case 'n' -> literal("null", null);
      default -> {
        if (c == '-' || (c >= '0' && c <= '9')) yield number();
        throw error("unexpected '" + c + "'");
      }
    };
  }

  private Map<String, Object> object(int depth) {
    Map<String, Object> members = new LinkedHashMap<>();
    at++; // {
    whitespace();
    if (peek() == '}') {
      at++;
      return members;
    }
    for (;;) {
      whitespace();
      if (peek() != '"') throw error("a member name expected");
      String name = string();
      whitespace();
      expect(':');
      members.put(name, value(depth + 1));
      whitespace();
      char next = next();
      if (next == '}') return members;
      if (next != ',') throw error("',' or '}' expected");
    }
  }

  private List<Object> array(int depth) {
    List<Object> items = new ArrayList<>();
    at++; // [
    whitespace();
    if (peek() == ']') {
      at++;
      return items;
    }
    for (;;) {
      items.add(value(depth + 1));
      whitespace();
      char next = next();
      if (next == ']') return items;
      if (next != ',') throw error("',' or ']' expected");
    }
  }

  private String string() {
    at++; // "
    StringBuilder out = new StringBuilder();
    for (;;) {
      char c = next();
      if (c == '"') return out.toString();
      if (c < 0x20) throw error("a control character in a string");
      if (c != '\\') {
        out.append(c);
        continue;
      }
      char escaped = next();
      switch (escaped) {
        case '"', '\\', '/' -> out.append(escaped);
        case 'b' -> out.append('\b');
        case 'f' -> out.append('\f');
        case 'n' -> out.append('\n');
        case 'r' -> out.append('\r');
        case 't' -> out.append('\t');
        case 'u' -> {
          int unit = 0;
          for (int end = at + 4; at < end; at++) {
            char hex = at < text.length() ? text.charAt(at) : 'x';
            int digit = hex < 128 ? Character.digit(hex, 16) : -1; // ASCII only: digit() knows other scripts' digits
            if (digit < 0) throw error("a \\u escape without four hex digits");
            unit = unit * 16 + digit;
          }
          out.append((char) unit);
        }
        default -> throw error("an unknown escape \\" + escaped);
      }
    }
  }

  private Object number() {
    int start = at;
    if (peek() == '-') at++;
    if (peek() == '0') at++;
    else if (!digits()) throw error("a digit expected");
    boolean integer = true;
    if (peek() == '.') {
      at++;
      if (!digits()) throw error("a digit expected after '.'");
      integer = false;
    }
    if (peek() == 'e' || peek() == 'E') {
      at++;
      if (peek() == '+' || peek() == '-') at++;
      if (!digits()) throw error("a digit expected in the exponent");
      integer = false;
    }
    String literal = text.substring(start, at);
    if (!integer) return new BigDecimal(literal);
    BigInteger value = new BigInteger(literal);
    return value.bitLength() < 64 ? (Object) value.longValue() : value;
  }

  private boolean digits() {
    int start = at;
    while (at < text.length() && text.charAt(at) >= '0' && text.charAt(at) <= '9') at++;
    return at > start;
  }

  private Object literal(String word, Object value) {
    if (!text.startsWith(word, at)) throw error("unexpected '" + text.charAt(at) + "'");
    at += word.length();
    return value;
  }

  private void whitespace() {
    while (at < text.length()) {
      char c = text.charAt(at);
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
      at++;
    }
  }

  private char peek() {
    return at < text.length() ? text.charAt(at) : '\0';
  }

  private char next() {
    if (at >= text.length()) throw error("unexpected end");
    return text.charAt(at++);
  }

  private void expect(char c) {
    if (next() != c) throw error("'" + c + "' expected");
  }

  private IllegalArgumentException error(String what) {
    return new IllegalArgumentException("not JSON: " + what + " at " + at);
  }
}
