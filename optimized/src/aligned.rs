//! Buffers whose first element sits on a 64-byte boundary (a cache line, a zmm register, an AMX
//! tile row).
//!
//! `Vec` only promises the element type's alignment, and the allocator returns 16-byte aligned
//! blocks (an `mmap`-backed block starts 16 bytes past its page), so every 64-byte row of a tile
//! load or a zmm load from a plain `Vec<u8>` spans two cache lines: twice the loads, and for AMX's
//! `tileloadd` / `tilestored` (16 rows each) a measured third of the GEMM's time. [`AlignedVec`]
//! allocates up to 64 bytes more and starts its slice at the first aligned element, in safe
//! code: where `align_offset` cannot say (it may answer `usize::MAX`), the slice starts at the
//! allocation's start, which is only slower.

use core::ops::{Deref, DerefMut};

/// A zero-initialized, fixed-length buffer whose slice starts 64-byte aligned.
#[derive(Debug)]
pub struct AlignedVec<T> {
    buf: Vec<T>,
    off: usize,
    len: usize,
}

impl<T: Copy + Default> AlignedVec<T> {
    /// `len` default (zero) elements.
    pub fn zeroed(len: usize) -> AlignedVec<T> {
        let slack = 64 / core::mem::size_of::<T>().max(1);
        let buf = vec![T::default(); len + slack];
        let off = buf.as_ptr().align_offset(64);
        let off = if off <= slack { off } else { 0 };
        AlignedVec { buf, off, len }
    }

    /// A copy of `s`.
    pub fn from_slice(s: &[T]) -> AlignedVec<T> {
        let mut v = AlignedVec::zeroed(s.len());
        v.copy_from_slice(s);
        v
    }
}

impl<T> Deref for AlignedVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.buf[self.off..self.off + self.len]
    }
}

impl<T> DerefMut for AlignedVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.buf[self.off..self.off + self.len]
    }
}

/// A clone is a new allocation, aligned afresh (the offset of the original does not carry over).
impl<T: Copy + Default> Clone for AlignedVec<T> {
    fn clone(&self) -> AlignedVec<T> {
        AlignedVec::from_slice(self)
    }
}

impl<T: PartialEq> PartialEq for AlignedVec<T> {
    fn eq(&self, other: &AlignedVec<T>) -> bool {
        **self == **other
    }
}

#[cfg(test)]
mod tests {
    use super::AlignedVec;

    #[test]
    fn starts_aligned_zeroed_and_clones_aligned() {
        for len in [0usize, 1, 63, 64, 65, 4096, 200_000] {
            let mut v = AlignedVec::<u8>::zeroed(len);
            assert_eq!(v.len(), len);
            assert!(v.iter().all(|&x| x == 0));
            assert_eq!(v.as_ptr() as usize % 64, 0, "len {len}");
            v.iter_mut().enumerate().for_each(|(i, x)| *x = i as u8);
            let c = v.clone();
            assert_eq!(c.as_ptr() as usize % 64, 0);
            assert!(c == v);
            let w = AlignedVec::<i32>::zeroed(len);
            assert_eq!(w.as_ptr() as usize % 64, 0);
        }
    }
}
