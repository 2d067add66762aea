//! Throughput with many threads on one lock (criterion, `iter_custom`): one
//! criterion iteration is one operation under the lock, wherever it ran, so
//! criterion's time per iteration is the inverse of the throughput. For
//! every thread count, the token and the mutex run back to back in the same
//! process, on the same pool code, doing the same work.

mod common;

use std::time::Duration;

use common::{Lock, Pool, Work};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};

/// A lock to compare, by the name its rows get in the report.
type Contender = (&'static str, fn() -> Lock);

/// Run `ops` operations of `work` on `threads` threads for each lock.
fn compare(c: &mut Criterion, group: &str, threads: &[usize], work: Work, locks: &[Contender]) {
    let mut g = c.benchmark_group(group);
    // Every sample the same length: a sample of a few operations would
    // measure waking the pool, not the lock.
    g.sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Elements(1));
    for &n in threads {
        for &(name, make) in locks {
            let pool = Pool::new(n, make(), work);
            g.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter_custom(|ops| pool.run(ops))
            });
            // For scripts/bench: how evenly the threads got the lock.
            let share = pool.share();
            if share.per_thread.iter().sum::<u64>() == 0 {
                continue; // not run (filtered out)
            }
            let max = share.per_thread.iter().max().copied().unwrap_or(0);
            let min = share.per_thread.iter().min().copied().unwrap_or(0);
            common::record_meta(
                &format!("share-{group}-{name}-{n}"),
                &format!("{max} {min} {} {}", share.starved_runs, share.long_runs),
            );
        }
    }
    g.finish();
}

const TOKEN_VS_MUTEX: &[Contender] = &[("token", Lock::token), ("mutex", Lock::mutex)];

/// The contended groups: the token against every peer.
const TOKEN_VS_PEERS: &[Contender] = &[
    ("token", Lock::token),
    ("mutex", Lock::mutex),
    ("adaptive_mutex", Lock::adaptive_mutex),
    ("std_mutex", Lock::std_mutex),
    ("parking_lot", Lock::parking_lot),
];

fn contended(c: &mut Criterion) {
    let threads = [2, 4, 8, 16];
    compare(
        c,
        "contended_10ns",
        &threads,
        Work::Spin(10),
        TOKEN_VS_PEERS,
    );
    compare(
        c,
        "contended_1us",
        &threads,
        Work::Spin(1000),
        TOKEN_VS_PEERS,
    );
}

/// The case tokens exist for: the holder blocks inside its critical
/// section. A mutex keeps everybody else out meanwhile; a token is released
/// by the hook and retaken when the call returns.
fn holder_blocks(c: &mut Criterion) {
    let threads = [4, 16];
    compare(
        c,
        "holder_blocks_sleep",
        &threads,
        Work::Sleep(100_000),
        TOKEN_VS_MUTEX,
    );
    compare(
        c,
        "holder_blocks_pipe",
        &threads,
        Work::PipeRead(100_000),
        TOKEN_VS_MUTEX,
    );
}

/// Readers only, with a short (10 ns) read-side section: shared tokens
/// against glibc's rwlock taken for reading, and the mutex.
fn shared_readers(c: &mut Criterion) {
    compare(
        c,
        "shared_readers",
        &[1, 2, 4, 8, 16],
        Work::Spin(10),
        &[
            ("token_shared", Lock::shared_token),
            ("rwlock_read", Lock::rwlock_read),
            ("mutex", Lock::mutex),
        ],
    );
}

fn main() {
    eprintln!("lwkt benches: using {}", common::lwkt().path);
    let per_ns = common::spin_iters_for(1_000_000) as f64 / 1e6;
    common::record_meta("spin", &format!("{per_ns:.4}"));
    // Defaults for a plain `cargo bench`; scripts/bench passes its own.
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .configure_from_args();
    contended(&mut c);
    holder_blocks(&mut c);
    shared_readers(&mut c);
    c.final_summary();
}
