//! One conformance suite, run against every backend: the local one, and the REST one against
//! a real `rclone serve restic` started on loopback for the test (and stopped after it).

use cairn_backend::{Backend, BackendError, FileType, Handle, LocalBackend};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn conformance(be: &dyn Backend) {
    // A fresh repository: nothing there yet.
    be.create().expect("create");
    assert!(
        !be.exists().expect("exists"),
        "{}: config before save",
        be.location()
    );
    be.save(&Handle::config(), b"config bytes")
        .expect("save config");
    assert!(be.exists().unwrap());
    assert_eq!(be.load(&Handle::config(), 0, 0).unwrap(), b"config bytes");

    // Small files of every type, with sizes in listings.
    let small = |i: u8| -> (Handle, Vec<u8>) {
        let name = format!("{:02x}", i).repeat(32);
        (
            Handle::new(FileType::Snapshot, name),
            vec![i; 100 + i as usize],
        )
    };
    for i in 0..5 {
        let (h, d) = small(i);
        be.save(&h, &d).unwrap();
    }
    let mut listed = be.list(FileType::Snapshot).unwrap();
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(listed.len(), 5);
    for (i, f) in listed.iter().enumerate() {
        assert_eq!(f.name, small(i as u8).0.name);
        assert_eq!(f.size, 100 + i as u64);
    }
    assert!(be.list(FileType::Lock).unwrap().is_empty());

    // Overwriting is refused and leaves the file as it was.
    let (h0, d0) = small(0);
    match be.save(&h0, b"other") {
        Err(BackendError::AlreadyExists(_)) => {}
        other => panic!("{}: overwrite gave {other:?}", be.location()),
    }
    assert_eq!(be.load(&h0, 0, 0).unwrap(), d0);

    // Missing files.
    let missing = Handle::new(FileType::Index, "ff".repeat(32));
    assert!(matches!(
        be.load(&missing, 0, 0),
        Err(BackendError::NotFound(_))
    ));
    assert!(matches!(be.stat(&missing), Err(BackendError::NotFound(_))));
    be.remove(&missing)
        .expect("removing a missing file is not an error");

    // A large file (more than a pack), whole and in ranges.
    let big: Vec<u8> = (0..20u32 * 1024 * 1024)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let hb = Handle::new(FileType::Data, "ab".repeat(32));
    be.save(&hb, &big).unwrap();
    assert_eq!(be.stat(&hb).unwrap(), big.len() as u64);
    assert!(be.load(&hb, 0, 0).unwrap() == big, "large file differs");
    assert_eq!(be.load(&hb, 1000, 10).unwrap(), &big[1000..1010]);
    let tail = big.len() as u64 - 300;
    assert_eq!(be.load(&hb, tail, 0).unwrap(), &big[tail as usize..]);
    assert_eq!(be.load(&hb, tail, 300).unwrap(), &big[tail as usize..]);
    let packs = be.list(FileType::Data).unwrap();
    assert_eq!(packs.len(), 1);
    assert_eq!(packs[0].size, big.len() as u64);

    // Removal.
    be.remove(&hb).unwrap();
    assert!(be.list(FileType::Data).unwrap().is_empty());
    assert!(matches!(be.stat(&hb), Err(BackendError::NotFound(_))));
}

#[test]
fn local_backend_conforms() {
    let dir = tempfile::tempdir().unwrap();
    conformance(&LocalBackend::new(dir.path().join("repo")));
}

/// `rclone serve restic` on a free loopback port; killed when dropped.
struct RcloneRest {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RcloneRest {
    fn start() -> Option<RcloneRest> {
        let available = Command::new("rclone")
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !available {
            if std::env::var("CAIRN_REQUIRE_SERVERS").as_deref() == Ok("1") {
                panic!("rclone is not installed, but CAIRN_REQUIRE_SERVERS=1");
            }
            eprintln!("SKIP: rclone not installed");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("rclone")
            .args(["serve", "restic", "--addr"])
            .arg(format!("127.0.0.1:{port}"))
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rclone serve restic");
        let server = RcloneRest {
            child,
            port,
            _dir: dir,
        };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "rclone serve restic did not come up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(server)
    }
}

impl Drop for RcloneRest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn rest_backend_conforms_against_rclone() {
    let Some(server) = RcloneRest::start() else {
        return;
    };
    let url = format!("rest:http://127.0.0.1:{}/repo/", server.port);
    let be = cairn_backend::open(&url).expect("open rest backend");
    conformance(be.as_ref());
    // A repository root that does not exist yet has no config.
    let other =
        cairn_backend::open(&format!("rest:http://127.0.0.1:{}/other/", server.port)).unwrap();
    assert!(!other.exists().unwrap());
}

#[test]
fn rest_backend_reports_a_server_that_is_gone() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let be = cairn_backend::open(&format!("rest:http://127.0.0.1:{port}/")).unwrap();
    let err = be.exists().expect_err("nothing listens there");
    let msg = err.to_string();
    assert!(msg.contains("config"), "{msg}");
}
