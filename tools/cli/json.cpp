#include "json.hpp"

#include <cmath>
#include <cstdio>

namespace shmq_cli {

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
          char hex[8];
          std::snprintf(hex, sizeof hex, "\\u%04x", static_cast<unsigned char>(c));
          out += hex;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string base64(std::span<const std::byte> bytes) {
  static constexpr char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, bytes.size() - i);
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 3; ++k)
      v = (v << 8) | (k < n ? static_cast<std::uint32_t>(bytes[i + k]) : 0);
    for (std::size_t k = 0; k < 4; ++k) out += k <= n ? digits[(v >> (18 - 6 * k)) & 63] : '=';
  }
  return out;
}

bool printable(std::span<const std::byte> bytes) noexcept {
  for (const std::byte b : bytes) {
    const auto c = static_cast<unsigned char>(b);
    if ((c < 0x20 || c >= 0x7f) && c != '\t' && c != '\n' && c != '\r') return false;
  }
  return true;
}

json_object& json_object::field(std::string_view key, std::string_view raw_json) {
  if (out_.size() > 1) out_ += ',';
  out_ += json_string(key);
  out_ += ':';
  out_ += raw_json;
  return *this;
}

json_object& json_object::text(std::string_view key, std::string_view value) { return field(key, json_string(value)); }

json_object& json_object::number(std::string_view key, std::uint64_t value) { return field(key, std::to_string(value)); }

json_object& json_object::real(std::string_view key, double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", std::isfinite(value) ? value : 0.0);
  return field(key, text);
}

json_object& json_object::boolean(std::string_view key, bool value) { return field(key, value ? "true" : "false"); }

}  // namespace shmq_cli
