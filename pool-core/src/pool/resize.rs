//! The pool's size at run time: the target ([`ThreadPool::threads`]), and the two resizes,
//! [`ThreadPool::set_threads`] and [`ThreadPool::compare_set_threads`] (the resize protocol:
//! `README.md`, "Resize protocol").

use super::{StartRefused, ThreadPool};
use crate::error::ResizeError;

impl ThreadPool {
    /// The number of workers asked for (by `build` or [`set_threads`](Self::set_threads)).
    pub fn threads(&self) -> usize {
        self.shared.size.target()
    }

    /// Grows or shrinks the pool at run time.
    ///
    /// Growing starts workers at once. Shrinking retires workers only between tasks, so running
    /// tasks finish and no queued task is lost; the live count reaches `threads` as soon as
    /// enough workers are between tasks.
    ///
    /// # Errors
    ///
    /// [`ResizeError`] for `threads` 0 or above [`MAX_THREADS`](Self::MAX_THREADS) (the pool
    /// is left as it was), after shutdown, or when the OS refuses a thread; the pool then keeps
    /// the workers it started, and [`threads`](Self::threads) is their number.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::ThreadPool;
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// pool.set_threads(4).unwrap();
    /// assert_eq!(pool.threads(), 4);
    /// assert!(pool.set_threads(0).is_err());
    /// ```
    pub fn set_threads(&self, threads: usize) -> Result<(), ResizeError> {
        self.resize(None, threads)
    }

    /// Resizes the pool to `threads` only if its size ([`threads`](Self::threads)) is still
    /// `current`, checked and changed as one step: no other resize comes in between.
    ///
    /// For a caller that decides a new size from the one it read, such as a controller: with
    /// [`set_threads`](Self::set_threads), a resize made by someone else between the read and
    /// the call would be undone by a decision about a size the pool no longer has.
    ///
    /// # Errors
    ///
    /// [`ResizeError::SizeChanged`] when the pool's size is no longer `current` (the pool is
    /// left as it was, the error says its size now); otherwise as
    /// [`set_threads`](Self::set_threads).
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_core::{ResizeError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// let seen = pool.threads();
    /// pool.set_threads(3).unwrap(); // someone else resizes in between
    /// let refused = pool.compare_set_threads(seen, 1).unwrap_err();
    /// assert!(matches!(refused, ResizeError::SizeChanged { expected: 2, found: 3, .. }));
    /// assert_eq!(pool.threads(), 3);
    /// pool.compare_set_threads(3, 1).unwrap();
    /// assert_eq!(pool.threads(), 1);
    /// ```
    pub fn compare_set_threads(&self, current: usize, threads: usize) -> Result<(), ResizeError> {
        self.resize(Some(current), threads)
    }

    /// `set_threads` (`expected`: `None`) and `compare_set_threads`: every change of the target
    /// is made under the `threads` lock, so a comparison under it holds until the change.
    fn resize(&self, expected: Option<usize>, threads: usize) -> Result<(), ResizeError> {
        if threads == 0 {
            return Err(ResizeError::ZeroThreads);
        }
        if threads > Self::MAX_THREADS {
            return Err(ResizeError::TooManyThreads { requested: threads });
        }
        // `--cfg loom_broken_compare_resize` (loom-tests checks that a model catches it): the
        // comparison before the lock, so another resize can come between it and the change.
        #[cfg(loom_broken_compare_resize)]
        self.check_size(expected, threads)?;
        let mut registered = self.shared.threads.lock();
        if self.shared.is_shutting_down() {
            return Err(ResizeError::ShutDown);
        }
        #[cfg(not(loom_broken_compare_resize))]
        self.check_size(expected, threads)?;
        let to_start = self.shared.size.set_target(threads);
        for _ in 0..to_start {
            if let Err((_, refused)) = self.spawn_worker(&mut registered) {
                // The pool keeps the workers it started, and its target says so: left at
                // `threads`, `threads()` would report a size the pool never reaches (nor
                // retries), and a controller that reads it as the current size would never
                // ask again.
                self.shared.size.set_target(self.shared.size.live());
                return Err(match refused {
                    StartRefused::ProcessLimit(limit) => ResizeError::ProcessLimit {
                        requested: threads,
                        limit,
                    },
                    StartRefused::Os(source) => ResizeError::Spawn {
                        requested: threads,
                        source,
                    },
                });
            }
        }
        #[cfg(not(loom_broken_idle_shrink))] // planted bug (loom-tests, `.ci/loom-planted`)
        if self.shared.size.live() > threads {
            // Parked workers re-check `live > target` and the surplus retires.
            self.shared.sleep.wake_all();
        }
        Ok(())
    }

    /// `compare_set_threads`'s comparison: refused if the size is not `expected`.
    fn check_size(&self, expected: Option<usize>, threads: usize) -> Result<(), ResizeError> {
        let Some(expected) = expected else {
            return Ok(());
        };
        match self.shared.size.target() {
            found if found != expected => Err(ResizeError::SizeChanged {
                requested: threads,
                expected,
                found,
            }),
            _ => Ok(()),
        }
    }
}
