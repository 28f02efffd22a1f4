//! Loops compiled for AVX-512 when the CPU has it. The binary targets baseline x86-64, whose
//! SSE2 vectorises 4 floats at a time; the encoder's element-wise passes (softmax, GELU, int8
//! quantization) run 16 at a time this way, on any CPU the binary starts on.

/// Calls `f` compiled with AVX-512F enabled when the CPU has it, as is otherwise.
#[inline(always)]
pub fn wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F (checked just above).
        return unsafe { avx512(f) };
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}
