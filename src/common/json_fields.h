// Reading fields of JSON documents that came from the network without throwing: a field of the
// wrong type reads as the fallback (nlohmann's value() throws on a type mismatch).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace cortex {

inline std::string StringField(const nlohmann::json& object, const char* key,
                               const std::string& fallback = "") {
  if (!object.is_object()) return fallback;
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : fallback;
}

inline int64_t IntField(const nlohmann::json& object, const char* key, int64_t fallback = 0) {
  if (!object.is_object()) return fallback;
  auto it = object.find(key);
  return it != object.end() && it->is_number_integer() ? it->get<int64_t>() : fallback;
}

inline double NumberField(const nlohmann::json& object, const char* key, double fallback = 0) {
  if (!object.is_object()) return fallback;
  auto it = object.find(key);
  return it != object.end() && it->is_number() ? it->get<double>() : fallback;
}

inline bool BoolField(const nlohmann::json& object, const char* key, bool fallback = false) {
  if (!object.is_object()) return fallback;
  auto it = object.find(key);
  return it != object.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

}  // namespace cortex
