#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace stitch {
// Lowercase hex SHA-256 of a byte range (FIPS 180-4); the addon hashes exactly the bytes it loads.
std::string Sha256Hex(const uint8_t* data, size_t len);
}  // namespace stitch
