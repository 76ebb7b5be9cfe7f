//! Difficulty: each epoch's target steers the number of accepted proofs
//! toward a goal, in integer arithmetic, so every replica gets the same.
//!
//! After an epoch that accepted `p` proofs against a goal of `g`, the next
//! target is `target * g / p`, kept within a factor of
//! [`MAX_TARGET_STEP`] of the last one (an epoch with no proof doubles it).
//! Proofs are a Poisson draw around the rate the target implies, so the
//! rule follows the miners' power within a few epochs and then wanders
//! around the goal by its noise, never by more than one step per epoch.

use crate::challenge::Target;
use crate::limits::MAX_TARGET_STEP;
use alloy_primitives::U256;

/// The target of the epoch after one that accepted `proofs` proofs at
/// `current`, for a goal of `goal` proofs per epoch.
pub fn next_target(current: Target, proofs: u32, goal: u32) -> Target {
    let step = U256::from(MAX_TARGET_STEP);
    let ceiling = current.0.saturating_mul(step);
    let floor = (current.0 / step).max(U256::from(1));
    if proofs == 0 {
        return Target(ceiling);
    }
    let (goal, proofs) = (U256::from(goal), U256::from(proofs));
    let wanted = match current.0.checked_mul(goal) {
        Some(product) => product / proofs,
        // Only near the top of the range, where the lost low bits are noise.
        None => (current.0 / proofs).saturating_mul(goal),
    };
    Target(wanted.clamp(floor, ceiling))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_moves_toward_the_goal_by_at_most_one_step() {
        let t = Target::one_in(1_000);
        assert_eq!(next_target(t, 8, 8), t);
        assert_eq!(next_target(t, 16, 8).0, t.0 / U256::from(2));
        assert_eq!(next_target(t, 64, 8).0, t.0 / U256::from(2));
        assert_eq!(next_target(t, 0, 8).0, t.0 * U256::from(2));
        assert_eq!(next_target(t, 1, 8).0, t.0 * U256::from(2));
        assert_eq!(next_target(t, 6, 8).0, t.0 * U256::from(8) / U256::from(6));
    }

    #[test]
    fn the_target_neither_overflows_nor_reaches_zero() {
        assert_eq!(next_target(Target::MAX, 0, 8), Target::MAX);
        assert_eq!(next_target(Target::MAX, 4, 8), Target::MAX);
        let one = Target(U256::from(1));
        assert_eq!(next_target(one, 4_000, 1), one);
    }
}
