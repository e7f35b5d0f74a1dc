#ifndef LETHE_CRC32_FOLD_H
#define LETHE_CRC32_FOLD_H

/// Folds the longest prefix of `data` whose length is a multiple of 256 bytes into 16 bytes, with
/// carry-less multiplies on 512-bit vectors (VPCLMULQDQ): the CRC-32 (zip's, zlib's `crc32`) of the
/// prefix, continued from `crc`, is the CRC-32 of `folded` continued from 0xFFFFFFFF. zlib's table
/// loop ran at 6.7 GB/s, a sixth of a 40 MB input's whole run. Returns the prefix length, or 0
/// (nothing folded) when `length` is under 256 or the CPU lacks the instructions.
long lethe_crc32_fold(unsigned int crc, const unsigned char *data, long length, unsigned char folded[16]);

#endif
