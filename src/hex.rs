//! Digests as lower-case hex, for fingerprints, checksums and row ids.

/// Lower-case hex of the first `n` hex digits of a digest.
pub fn hex_prefix(bytes: &[u8], n: usize) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    push_hex(&mut s, bytes);
    s.truncate(n);
    s
}

/// Appends `bytes` as lower-case hex (a table lookup per digit: ids are made per row).
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}
