//! argon2id's working memory in a mapping of its own, returned to the OS as soon as the key is derived.
//!
//! The default parameters need 19 MiB. Allocated from the global allocator (argon2's `hash_password_into`), that
//! memory stays with the process after it is freed: mimalloc keeps it for reuse, and an idle server never asks
//! again, so a passphrase-protected secrets file cost ~20 MB of resident memory for the process's lifetime. An
//! anonymous mapping is unmapped on drop, whatever the allocator.

use argon2::Block;

/// Zeroed, page-aligned memory for `len` argon2 blocks; unmapped when dropped.
pub(crate) struct KdfMemory {
    map: memmap2::MmapMut,
    len: usize,
}

// What `as_mut` relies on, checked at compile time: a block is exactly its 1 KiB of `u64`s (no padding), and its
// alignment (64) divides any page size.
const _: () = assert!(std::mem::size_of::<Block>() == Block::SIZE);
const _: () = assert!(std::mem::align_of::<Block>() <= 4096);

impl KdfMemory {
    /// Maps zeroed memory for `len` blocks.
    pub(crate) fn new(len: usize) -> std::io::Result<Self> {
        let bytes = len.checked_mul(Block::SIZE).filter(|b| *b > 0).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{len} argon2 blocks cannot be mapped"))
        })?;
        let map = memmap2::MmapMut::map_anon(bytes)?;
        // Mappings start on a page boundary; checked rather than assumed, since `as_mut` depends on it.
        if map.as_ptr().align_offset(std::mem::align_of::<Block>()) != 0 {
            return Err(std::io::Error::other("the mapping is not aligned for argon2 blocks"));
        }
        Ok(Self { map, len })
    }
}

impl AsMut<[Block]> for KdfMemory {
    /// The whole mapping as argon2 blocks.
    #[allow(unsafe_code)]
    fn as_mut(&mut self) -> &mut [Block] {
        let ptr = self.map.as_mut_ptr().cast::<Block>();
        // SAFETY: `from_raw_parts_mut` needs a non-null pointer, aligned for `Block`, to `len` initialised and valid
        // `Block`s inside one allocation, not aliased for the slice's lifetime.
        // - The mapping is `len * Block::SIZE` bytes (`new`) and `size_of::<Block>() == Block::SIZE` (asserted
        //   above), so `len` blocks fit exactly; `new` refused an empty mapping, so the pointer is non-null.
        // - `new` checked the alignment.
        // - Anonymous mappings are zero-filled by the OS, so every byte is initialised; a `Block` is only `u64`s
        //   with no padding (its size equals its array's), and any bytes are a valid `u64`.
        // - The slice borrows `self` mutably, so it cannot outlive the mapping (unmapped on drop) nor alias another
        //   reference to it: `map` is private and only reached through here.
        unsafe { std::slice::from_raw_parts_mut(ptr, self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mapping_holds_exactly_the_blocks_asked_for() {
        let mut memory = KdfMemory::new(3).unwrap();
        let blocks = memory.as_mut();
        assert_eq!(blocks.len(), 3);
        blocks[2] = Block::default();
        assert!(KdfMemory::new(0).is_err());
        assert!(KdfMemory::new(usize::MAX).is_err());
    }
}
