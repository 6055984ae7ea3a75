//! The backend conformance suite: every backend must pass it. Each backend's test file starts
//! its real server on loopback and calls [`conformance`].

#![allow(dead_code)]

use cairn_backend::{Backend, BackendError, FileType, Handle};
use sha2::{Digest, Sha256};

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub fn conformance(be: &dyn Backend) {
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
    // Files are named by the SHA-256 of their content, as in a real repository (the retry
    // decorator checks that on whole-file loads).
    let small = |i: u8| -> (Handle, Vec<u8>) {
        let data = vec![i; 100 + i as usize];
        (Handle::new(FileType::Snapshot, sha256_hex(&data)), data)
    };
    for i in 0..5 {
        let (h, d) = small(i);
        be.save(&h, &d).unwrap();
    }
    let mut listed = be.list(FileType::Snapshot).unwrap();
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    let mut want: Vec<_> = (0..5).map(|i| (small(i).0.name, 100 + i as u64)).collect();
    want.sort();
    let got: Vec<_> = listed.iter().map(|f| (f.name.clone(), f.size)).collect();
    assert_eq!(got, want);
    assert!(be.list(FileType::Lock).unwrap().is_empty());

    // Overwriting is refused and leaves the file as it was.
    let (h0, d0) = small(0);
    match be.save(&h0, b"other") {
        Err(BackendError::AlreadyExists(_)) => {}
        other => panic!("{}: overwrite gave {other:?}", be.location()),
    }
    assert_eq!(be.load(&h0, 0, 0).unwrap(), d0);

    // Missing files.
    let missing = Handle::new(FileType::Index, sha256_hex(b"never saved"));
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
    let hb = Handle::new(FileType::Data, sha256_hex(&big));
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
