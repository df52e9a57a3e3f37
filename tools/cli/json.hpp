// Just enough JSON for shmq's --json outputs: escaped strings, base64 for binary
// payloads, and an object written field by field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace shmq_cli {

std::string json_string(std::string_view text);  // quoted and escaped
std::string base64(std::span<const std::byte> bytes);
// Printable ASCII, tabs and newlines: shown as text rather than base64.
bool printable(std::span<const std::byte> bytes) noexcept;

// {"a":1,"b":"x"}: fields in the order they are added.
class json_object {
 public:
  json_object& field(std::string_view key, std::string_view raw_json);  // value already JSON
  json_object& text(std::string_view key, std::string_view value);
  json_object& number(std::string_view key, std::uint64_t value);
  json_object& real(std::string_view key, double value);
  json_object& boolean(std::string_view key, bool value);
  std::string str() const { return out_ + "}"; }

 private:
  std::string out_ = "{";
};

}  // namespace shmq_cli
