//! The generic cell rate algorithm, as plain arithmetic on milliseconds. The in-process store
//! runs it here; the Redis store runs the same steps in a Lua script (see `redis_store.rs`), so
//! every server sharing a Redis sees one budget. A budget of `limit` requests per `period`
//! allows a burst of `limit`, then one request every `period / limit`.

/// What one request against a budget found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests left right now, after this one.
    pub remaining: u32,
    /// Milliseconds until the budget is whole again.
    pub reset_ms: u64,
    /// Milliseconds until a request would be allowed (0 when this one was).
    pub retry_after_ms: u64,
}

/// How far past `now` a request may be due and still count as due (rounding, not policy).
pub const SLACK_MS: f64 = 0.01;

/// Decides one request at `now` (ms) given the key's stored theoretical arrival time `tat`
/// (ms; `None` for a key never seen or forgotten). Returns the decision and the `tat` to
/// store when the request is allowed.
pub fn decide(tat: Option<f64>, now: f64, period_ms: f64, limit: u32) -> (Decision, Option<f64>) {
    let interval = period_ms / f64::from(limit.max(1));
    let tat = tat.unwrap_or(now).max(now);
    let new_tat = tat + interval;
    let allow_at = new_tat - period_ms;
    // Times near 1.7e12 ms lose their last fraction of a microsecond in sums: a request due
    // "now" mustn't be refused for that.
    if allow_at > now + SLACK_MS {
        let decision = Decision { allowed: false, remaining: 0, reset_ms: (tat - now).ceil() as u64, retry_after_ms: (allow_at - now).ceil() as u64 };
        return (decision, None);
    }
    let remaining = ((now - allow_at) / interval).floor() as u32;
    (Decision { allowed: true, remaining, reset_ms: (new_tat - now).ceil() as u64, retry_after_ms: 0 }, Some(new_tat))
}

#[cfg(test)]
mod tests {
    use super::decide;

    /// Runs `times` requests at `now` against a key whose state is `tat`.
    fn burst(tat: &mut Option<f64>, now: f64, times: u32) -> Vec<bool> {
        (0..times)
            .map(|_| {
                let (decision, next) = decide(*tat, now, 60_000.0, 6);
                if next.is_some() {
                    *tat = next;
                }
                decision.allowed
            })
            .collect()
    }

    #[test]
    fn a_full_budget_allows_a_burst_of_its_limit_then_one_request_per_interval() {
        let mut tat = None;
        assert_eq!(burst(&mut tat, 0.0, 7), [true, true, true, true, true, true, false]);
        // Six a minute: one more every ten seconds.
        assert_eq!(burst(&mut tat, 9_999.0, 1), [false]);
        assert_eq!(burst(&mut tat, 10_000.0, 2), [true, false]);
        // A quiet minute refills it whole, and no more than whole.
        assert_eq!(burst(&mut tat, 200_000.0, 7), [true, true, true, true, true, true, false]);
    }

    #[test]
    fn the_decision_says_what_is_left_and_when_to_come_back() {
        let (first, tat) = decide(None, 0.0, 60_000.0, 6);
        assert_eq!((first.allowed, first.remaining, first.reset_ms), (true, 5, 10_000));
        let mut tat = tat;
        for _ in 0..5 {
            tat = decide(tat, 0.0, 60_000.0, 6).1;
        }
        let (refused, unchanged) = decide(tat, 1_000.0, 60_000.0, 6);
        assert_eq!(unchanged, None, "a refused request costs nothing");
        assert_eq!((refused.allowed, refused.remaining, refused.retry_after_ms, refused.reset_ms), (false, 0, 9_000, 59_000));
    }
}
