//! Bandwidth limits (restic's `--limit-upload` and `--limit-download`): a decorator that
//! paces the bytes each direction moves so that, over any stretch longer than one request,
//! they average at most the given rate. Requests are not cut into pieces: one 16 MiB pack at
//! 1 MiB/s goes out at once and the next request waits 16 s, which keeps every backend's
//! request path as it is.

use crate::decorator::Decorator;
use crate::{Backend, Handle, Result, Staged};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A pace shared by every thread using one direction.
struct Pace {
    bytes_per_sec: f64,
    /// When the bytes granted so far have been paid for.
    paid_until: Mutex<Option<Instant>>,
}

impl Pace {
    fn new(kib_per_sec: u64) -> Pace {
        Pace {
            bytes_per_sec: (kib_per_sec.max(1) * 1024) as f64,
            paid_until: Mutex::new(None),
        }
    }

    /// Accounts for `n` bytes moved and waits until the average is within the rate again.
    fn pay(&self, n: u64) {
        let cost = Duration::from_secs_f64(n as f64 / self.bytes_per_sec);
        let until = {
            let mut p = self.paid_until.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            // Idle time is not saved up for a later burst.
            let start = p.filter(|t| *t > now).unwrap_or(now);
            let until = start + cost;
            *p = Some(until);
            until
        };
        let now = Instant::now();
        if until > now {
            std::thread::sleep(until - now);
        }
    }
}

/// A backend whose uploads and downloads are paced (either may be unlimited).
pub struct Limited {
    inner: Arc<dyn Backend>,
    up: Option<Pace>,
    down: Option<Pace>,
}

impl Limited {
    /// Rates in KiB/s, as restic takes them; `None` leaves that direction alone.
    pub fn new(
        inner: Arc<dyn Backend>,
        upload_kib: Option<u64>,
        download_kib: Option<u64>,
    ) -> Limited {
        Limited {
            inner,
            up: upload_kib.map(Pace::new),
            down: download_kib.map(Pace::new),
        }
    }

    fn uploaded(&self, n: u64) {
        if let Some(p) = &self.up {
            p.pay(n);
        }
    }

    fn downloaded(&self, n: u64) {
        if let Some(p) = &self.down {
            p.pay(n);
        }
    }
}

impl Decorator for Limited {
    type Inner = dyn Backend;
    fn inner(&self) -> &Self::Inner {
        &*self.inner
    }
    fn save(&self, handle: &Handle, data: &[u8]) -> Result<()> {
        self.uploaded(data.len() as u64);
        self.inner.save(handle, data)
    }
    fn save_staged(&self, handle: &Handle, staged: Staged) -> Result<()> {
        self.uploaded(staged.len());
        self.inner.save_staged(handle, staged)
    }
    fn save_cacheable(&self, handle: &Handle, staged: Staged) -> Result<()> {
        self.uploaded(staged.len());
        self.inner.save_cacheable(handle, staged)
    }
    fn load(&self, handle: &Handle, offset: u64, length: u64) -> Result<Vec<u8>> {
        let data = self.inner.load(handle, offset, length)?;
        self.downloaded(data.len() as u64);
        Ok(data)
    }
    fn load_cacheable(&self, handle: &Handle, offset: u64, length: u64) -> Result<Vec<u8>> {
        let data = self.inner.load_cacheable(handle, offset, length)?;
        self.downloaded(data.len() as u64);
        Ok(data)
    }
    fn load_capped(&self, handle: &Handle, max: u64) -> Result<Vec<u8>> {
        let data = self.inner.load_capped(handle, max)?;
        self.downloaded(data.len() as u64);
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FileType, LocalBackend};

    #[test]
    fn transfers_average_at_most_the_rate() {
        let dir = tempfile::tempdir().unwrap();
        let local: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.path()));
        local.create().unwrap();
        // 64 KiB/s each way; 3 x 32 KiB up, then 3 x 32 KiB down.
        let b = Limited::new(local, Some(64), Some(64));
        let data = vec![7u8; 32 * 1024];
        let start = Instant::now();
        for i in 0..3 {
            let h = Handle::new(FileType::Data, format!("{i:064x}"));
            Backend::save(&b, &h, &data).unwrap();
        }
        let up = start.elapsed();
        // The first 32 KiB cost 0.5 s before anything else may go: 1.5 s in all.
        assert!(up >= Duration::from_millis(1400), "uploads took {up:?}");
        let start = Instant::now();
        for i in 0..3 {
            let h = Handle::new(FileType::Data, format!("{i:064x}"));
            assert_eq!(Backend::load(&b, &h, 0, 0).unwrap().len(), data.len());
        }
        let down = start.elapsed();
        assert!(
            down >= Duration::from_millis(1400),
            "downloads took {down:?}"
        );
    }

    #[test]
    fn no_limit_no_wait() {
        let dir = tempfile::tempdir().unwrap();
        let local: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.path()));
        local.create().unwrap();
        let b = Limited::new(local, None, None);
        let start = Instant::now();
        let h = Handle::new(FileType::Data, format!("{:064x}", 1));
        Backend::save(&b, &h, &vec![0u8; 1 << 20]).unwrap();
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
