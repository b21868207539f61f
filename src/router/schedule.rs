//! Smooth weighted round robin, precomputed: the order in which accounts are visited for weights like 5,1,1 is
//! a,a,b,a,c,a,a — interleaved rather than bursty. Built once per config load, so selection is one atomic
//! increment and an index.

/// Longest schedule; larger weight sums are scaled down proportionally.
const MAX_LEN: u64 = 10_000;

/// The visiting order (indices into the account list) for these weights.
pub fn smooth_weighted(weights: &[u32]) -> Vec<u32> {
    let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    if total == 0 {
        return Vec::new();
    }
    let scaled: Vec<i64> = weights
        .iter()
        .map(|&w| {
            if total <= MAX_LEN {
                i64::from(w)
            } else {
                i64::try_from((u64::from(w) * MAX_LEN / total).max(1)).unwrap_or(1)
            }
        })
        .collect();
    let sum: i64 = scaled.iter().sum();
    let mut current = vec![0i64; scaled.len()];
    let mut out = Vec::with_capacity(usize::try_from(sum).unwrap_or(0));
    for _ in 0..sum {
        let mut best = 0;
        for (i, w) in scaled.iter().enumerate() {
            current[i] += w;
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= sum;
        out.push(u32::try_from(best).unwrap_or(0));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_example_is_interleaved() {
        assert_eq!(smooth_weighted(&[5, 1, 1]), [0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn counts_match_weights() {
        let s = smooth_weighted(&[3, 2, 1]);
        assert_eq!(s.len(), 6);
        assert_eq!(s.iter().filter(|&&i| i == 0).count(), 3);
        assert_eq!(s.iter().filter(|&&i| i == 1).count(), 2);
    }

    #[test]
    fn huge_weights_are_scaled() {
        let s = smooth_weighted(&[1_000_000, 1]);
        assert!(s.len() <= 10_001);
        assert!(s.contains(&1));
    }
}
