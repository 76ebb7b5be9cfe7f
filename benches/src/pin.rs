//! Holding threads to one core, so that a server and the load generator
//! do not take turns on the same cores (`ordo-bench compare --pin`).

use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::Pid;

/// Pins the calling thread (and the threads it starts afterwards) to `cpu`.
/// A failure is reported on stderr and leaves the thread unpinned: the run
/// goes on, and its report says which cores it asked for.
pub fn current_thread_to(cpu: usize) {
    let mut set = CpuSet::new();
    let pinned = set
        .set(cpu)
        .and_then(|()| sched_setaffinity(Pid::from_raw(0), &set));
    if let Err(error) = pinned {
        eprintln!("cannot pin a thread to cpu {cpu}: {error}");
    }
}

/// `command` prefixed to run on `cpu` only (through `taskset`), or as it
/// is when `cpu` is None.
pub fn on_cpu(command: &std::path::Path, cpu: Option<usize>) -> std::process::Command {
    match cpu {
        Some(cpu) => {
            let mut pinned = std::process::Command::new("taskset");
            pinned.arg("-c").arg(cpu.to_string()).arg(command);
            pinned
        }
        None => std::process::Command::new(command),
    }
}
