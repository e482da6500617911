//! A counting global allocator over the system allocator.
//!
//! A test binary installs it with
//! ```ignore
//! #[global_allocator]
//! static GLOBAL: esdk_test_support::alloc::Counting = esdk_test_support::alloc::Counting::new();
//! ```
//! and reads the counters with [`allocations`], [`thread_allocations`], [`current_bytes`] and
//! [`peak_during`]. There is one allocator per process, so the counters are process statics
//! (and one thread-local count, for tests that run in parallel threads).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Allocation requests (`alloc`, `alloc_zeroed`, `realloc`) since the process started.
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
/// Bytes currently allocated.
static CURRENT: AtomicUsize = AtomicUsize::new(0);
/// The highest [`CURRENT`] since the last [`peak_during`] began.
static PEAK: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Allocation requests made on this thread.
    static THREAD_ALLOCS: Cell<usize> = const { Cell::new(0) };
}

/// Called on every freed block before it goes back to the system allocator.
///
/// # Safety
/// The allocator calls it with the block being freed: `ptr` is valid for reads of
/// `layout.size()` bytes (some of which may never have been written) until the hook returns.
/// The hook must not allocate.
pub type FreeHook = unsafe fn(ptr: *const u8, layout: Layout);

/// The counting allocator; see the [module](self) documentation.
#[derive(Debug)]
pub struct Counting {
    cap: usize,
    on_free: Option<FreeHook>,
}

impl Counting {
    /// Counts only: no cap, no hook.
    pub const fn new() -> Self {
        Self {
            cap: usize::MAX,
            on_free: None,
        }
    }

    /// Refuses (returns null for) any single request above `cap` bytes, which makes the process
    /// abort with "memory allocation of N bytes failed".
    pub const fn with_cap(mut self, cap: usize) -> Self {
        self.cap = cap;
        self
    }

    /// Calls `hook` on every freed block before it is returned to the system allocator.
    pub const fn with_free_hook(mut self, hook: FreeHook) -> Self {
        self.on_free = Some(hook);
        self
    }
}

impl Counting {
    /// A new block of `size` bytes from `allocate`, counted; null above the cap.
    fn fresh(&self, size: usize, allocate: impl FnOnce() -> *mut u8) -> *mut u8 {
        if size > self.cap {
            return std::ptr::null_mut();
        }
        counted();
        let p = allocate();
        if !p.is_null() {
            grew(size);
        }
        p
    }
}

impl Default for Counting {
    fn default() -> Self {
        Self::new()
    }
}

fn counted() {
    ALLOCS.fetch_add(1, Ordering::SeqCst);
    THREAD_ALLOCS.with(|n| n.set(n.get() + 1));
}

fn grew(n: usize) {
    let now = CURRENT.fetch_add(n, Ordering::SeqCst) + n;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

// SAFETY: forwards every request to the system allocator unchanged, except that requests above
// the cap get null (which the `GlobalAlloc` contract allows); only counts, and runs the free
// hook (whose contract is documented on `FreeHook`) before the block is freed.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        self.fresh(layout.size(), || unsafe { System.alloc(layout) })
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        self.fresh(layout.size(), || unsafe { System.alloc_zeroed(layout) })
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > self.cap {
            return std::ptr::null_mut();
        }
        counted();
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
            grew(new_size);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(hook) = self.on_free {
            // SAFETY: `ptr` is the caller's live block of `layout.size()` bytes until the
            // `System.dealloc` below.
            unsafe { hook(ptr, layout) };
        }
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Allocation requests (`alloc`, `alloc_zeroed`, `realloc`) of the whole process so far.
pub fn allocations() -> usize {
    ALLOCS.load(Ordering::SeqCst)
}

/// Allocation requests made on the calling thread so far (tests running in parallel threads do
/// not disturb it).
pub fn thread_allocations() -> usize {
    THREAD_ALLOCS.with(Cell::get)
}

/// Bytes allocated and not yet freed, process-wide.
pub fn current_bytes() -> usize {
    CURRENT.load(Ordering::SeqCst)
}

/// Runs `f` and returns its result with the peak heap growth during it: the most bytes
/// allocated at any moment above the level at the start. Process-wide, so the caller keeps
/// other threads quiet meanwhile.
pub fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = CURRENT.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let r = f();
    let peak = PEAK.load(Ordering::SeqCst).saturating_sub(base);
    (r, peak)
}
