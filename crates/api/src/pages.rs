//! [`PageBuf`]: a fixed-capacity byte buffer in its own anonymous memory mapping, for request bodies
//! and their decoded forms.
//!
//! Why not a `Vec`: the body memory budget counts the bytes a body holds, and that count is only the
//! process's memory if freed bodies go back to the OS. The allocator (mimalloc) keeps freed large
//! blocks a while, per thread: six concurrent gzip bombs decoded to 32 MiB each under a 72 MiB budget
//! raised the server's peak resident set by 176 MiB with `Vec` buffers, by 89 MiB with these
//! (`front_door.rs`). A mapping's pages are resident only once written, and all of them are returned
//! when the buffer is dropped.

use std::ptr::NonNull;

use axum::body::Bytes;

/// A byte buffer of fixed capacity; pages are resident once written and unmapped on drop.
pub struct PageBuf {
    ptr: NonNull<u8>,
    len: usize,
    cap: usize,
}

// SAFETY: the buffer owns its mapping exclusively; `&PageBuf` only reads it.
unsafe impl Send for PageBuf {}
unsafe impl Sync for PageBuf {}

/// More bytes than the buffer's capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("buffer of {cap} bytes is full")]
pub struct Full {
    pub cap: usize,
}

impl PageBuf {
    /// Reserves `cap` bytes of address space (none of it resident yet).
    pub fn with_capacity(cap: usize) -> std::io::Result<PageBuf> {
        if cap == 0 {
            return Ok(PageBuf::default());
        }
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches no
        // existing memory. MAP_NORESERVE: pages are backed when written, so reserving the limit for a
        // body that turns out small costs nothing and is not refused by overcommit accounting.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                cap,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| std::io::Error::other("mmap returned null"))?;
        Ok(PageBuf { ptr, len: 0, cap })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Appends `data`, or refuses it whole when it would not fit.
    pub fn extend_from_slice(&mut self, data: &[u8]) -> Result<(), Full> {
        if data.len() > self.cap - self.len {
            return Err(Full { cap: self.cap });
        }
        // SAFETY: `len + data.len() <= cap`, the mapping is `cap` bytes and writable, and `data`
        // cannot overlap it (the mapping is ours alone and `data` is borrowed immutably elsewhere).
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().add(self.len), data.len());
        }
        self.len += data.len();
        Ok(())
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the first `len` bytes have been written; a dangling pointer is fine for length 0.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The buffer as `Bytes`, still unmapped when the last clone is dropped.
    pub fn into_bytes(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl Default for PageBuf {
    /// An empty buffer of capacity 0, mapping nothing.
    fn default() -> PageBuf {
        PageBuf { ptr: NonNull::dangling(), len: 0, cap: 0 }
    }
}

impl AsRef<[u8]> for PageBuf {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl std::fmt::Debug for PageBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageBuf").field("len", &self.len).field("cap", &self.cap).finish()
    }
}

impl Drop for PageBuf {
    fn drop(&mut self) {
        if self.cap > 0 {
            // SAFETY: unmaps exactly the mapping made in `with_capacity`; no slice of it outlives
            // `self` (`as_slice` borrows it, `into_bytes` moves it into the `Bytes` owner).
            unsafe {
                libc::munmap(self.ptr.as_ptr().cast(), self.cap);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_to_capacity_and_refuses_more() {
        let mut b = PageBuf::with_capacity(10).unwrap();
        b.extend_from_slice(b"hello").unwrap();
        b.extend_from_slice(b"world").unwrap();
        assert_eq!(b.extend_from_slice(b"!"), Err(Full { cap: 10 }));
        assert_eq!(b.as_slice(), b"helloworld");
        let bytes = b.into_bytes();
        let clone = bytes.clone();
        drop(bytes);
        assert_eq!(&clone[..], b"helloworld");
    }

    #[test]
    fn an_empty_buffer_maps_nothing() {
        let mut b = PageBuf::with_capacity(0).unwrap();
        assert!(b.is_empty());
        assert_eq!(b.extend_from_slice(b"x"), Err(Full { cap: 0 }));
        b.extend_from_slice(b"").unwrap();
        assert_eq!(b.into_bytes().len(), 0);
    }

    #[test]
    fn a_large_reservation_is_not_resident_until_written() {
        // 1 GiB of address space; writing a page makes only that page resident.
        let mut b = PageBuf::with_capacity(1 << 30).unwrap();
        b.extend_from_slice(&[1u8; 4096]).unwrap();
        assert_eq!(b.len(), 4096);
        assert_eq!(b.capacity(), 1 << 30);
    }
}
