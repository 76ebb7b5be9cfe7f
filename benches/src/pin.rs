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

/// The machine's online cores. Not `available_parallelism`, which in a
/// pinned process reports only the cores it is pinned to.
pub fn online_cores() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|list| count_cpus(list.trim()))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(0, usize::from))
}

/// Counts the CPUs of a kernel CPU list such as `0-3,6`.
fn count_cpus(list: &str) -> Option<usize> {
    list.split(',').try_fold(0, |count, range| {
        let (first, last) = range.split_once('-').unwrap_or((range, range));
        let (first, last): (usize, usize) = (first.parse().ok()?, last.parse().ok()?);
        Some(count + last.checked_sub(first)? + 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_count_every_core_of_every_range() {
        assert_eq!(count_cpus("0-1"), Some(2));
        assert_eq!(count_cpus("0"), Some(1));
        assert_eq!(count_cpus("0-3,6,8-9"), Some(7));
        assert_eq!(count_cpus("3-1"), None);
        assert_eq!(count_cpus("x"), None);
    }

    #[test]
    fn a_pinned_thread_still_sees_every_online_core() {
        let before = online_cores();
        let pinned = std::thread::spawn(|| {
            current_thread_to(0);
            online_cores()
        });
        assert_eq!(pinned.join().unwrap(), before);
        assert!(before >= 1);
    }
}
