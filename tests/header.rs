//! The committed C header must be exactly what build.rs generates from the code.
//! Regenerate with: XEROGUARD_UPDATE_HEADER=1 cargo test --test header

#[test]
fn committed_header_matches_the_generated_one() {
    let generated = std::fs::read_to_string(env!("XEROGUARD_GENERATED_HEADER")).expect("build.rs wrote the header");
    let committed_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("include/xeroguard.h");
    if std::env::var_os("XEROGUARD_UPDATE_HEADER").is_some() {
        std::fs::write(&committed_path, &generated).expect("writing include/xeroguard.h");
        return;
    }
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    if committed == generated {
        return;
    }
    let diff: Vec<String> = diff_lines(&committed, &generated);
    panic!(
        "include/xeroguard.h differs from what build.rs generates ({} lines differ):\n{}\n\n\
         Regenerate it with:  XEROGUARD_UPDATE_HEADER=1 cargo test --test header\n",
        diff.len(),
        diff.iter().take(60).cloned().collect::<Vec<_>>().join("\n")
    );
}

/// A plain line diff: lines only in the committed file (-) and only in the generated one (+), in order.
fn diff_lines(committed: &str, generated: &str) -> Vec<String> {
    let old: Vec<&str> = committed.lines().collect();
    let new: Vec<&str> = generated.lines().collect();
    // Longest common subsequence table; headers are a few hundred lines.
    let mut lcs = vec![vec![0u32; new.len() + 1]; old.len() + 1];
    for i in (0..old.len()).rev() {
        for j in (0..new.len()).rev() {
            lcs[i][j] = if old[i] == new[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < old.len() || j < new.len() {
        if i < old.len() && j < new.len() && old[i] == new[j] {
            i += 1;
            j += 1;
        } else if j < new.len() && (i == old.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(format!("+{:>4} {}", j + 1, new[j]));
            j += 1;
        } else {
            out.push(format!("-{:>4} {}", i + 1, old[i]));
            i += 1;
        }
    }
    out
}

/// The `*_default()` functions return their struct by value: a program built against an older header gives a buffer
/// of the older size for the result, so these structs never grow (the header's rules). Their sizes as ABI 2's header
/// (tests/abi/2/xeroguard.h) has them; ASan caught a library that wrote 96 bytes into an ABI-2 caller's 88.
#[test]
fn structs_returned_by_value_keep_their_abi_2_sizes() {
    use xeroguard::ffi::{xg_limits, xg_redis_options, xg_retry_policy};
    let sizes = (size_of::<xg_limits>(), size_of::<xg_retry_policy>(), size_of::<xg_redis_options>());
    assert_eq!(sizes, (104, 40, 88), "(xg_limits, xg_retry_policy, xg_redis_options)");
}
