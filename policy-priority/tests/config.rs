//! Bad settings get a typed error naming the field; good ones round-trip.

use policy_priority::{Aging, LevelQueue, PriorityQueue};
use std::time::Duration;

#[test]
fn zero_bound_is_rejected() {
    let err = Aging::after(Duration::ZERO).unwrap_err();
    assert!(err.is_zero_aging_bound());
    assert!(!err.is_aging_bound_too_long());
    assert!(err.to_string().contains("`aging_bound`"), "{err}");
}

#[test]
fn absurd_bound_is_rejected() {
    for bound in [
        Duration::from_secs(3601),
        Duration::from_secs(3600) + Duration::from_nanos(1),
        Duration::MAX,
    ] {
        let err = Aging::after(bound).unwrap_err();
        assert!(err.is_aging_bound_too_long(), "{bound:?}");
        assert!(err.to_string().contains("`aging_bound`"), "{err}");
        assert!(err.to_string().contains(&format!("{bound:?}")), "{err}");
    }
}

#[test]
fn bounds_at_the_limits_are_accepted() {
    for bound in [
        Duration::from_nanos(1),
        Aging::MAX_BOUND,
        Aging::DEFAULT_BOUND,
    ] {
        let aging = Aging::after(bound).unwrap();
        assert_eq!(aging.bound(), Some(bound));
        assert_eq!(PriorityQueue::with_aging(aging).aging(), aging);
        assert_eq!(LevelQueue::<()>::with_aging(aging).aging(), aging);
    }
    assert_eq!(Aging::default().bound(), Some(Duration::from_secs(1)));
    assert_eq!(PriorityQueue::default().aging(), Aging::default());
}

#[test]
fn debug_output_names_the_levels() {
    let queue = PriorityQueue::new();
    let text = format!("{queue:?}");
    assert!(text.contains("Critical") && text.contains("Idle") && text.contains("aging"));
    assert_eq!(format!("{:?}", Aging::off()), "Aging::off");
}
