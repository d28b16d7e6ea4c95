//! The special functions the count model needs, in log space: ln Γ, the regularized incomplete beta and gamma
//! functions, and from them the tail probabilities of the negative binomial (and its Poisson limit).
//!
//! Everything works on real arguments, so a window sum that is not an integer (a clipped or scaled value) gets
//! the continuous extension of the count tail. Returned values are natural logs of probabilities (≤ 0), so
//! tails far below `f64::MIN_POSITIVE` still compare correctly with a threshold.

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; relative error ~1e-15).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1−x) = π / sin(πx).
        let s = (std::f64::consts::PI * x).sin().abs().max(f64::MIN_POSITIVE);
        return std::f64::consts::PI.ln() - s.ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

const MAX_ITER: usize = 20_000;
const EPS: f64 = 1e-14;
const TINY: f64 = 1e-300;

/// Continued fraction of the incomplete beta (modified Lentz), as in Numerical Recipes `betacf`.
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    let qab = a + b;
    let qap = a + 1.0;
    let qam = a - 1.0;
    let floor = |v: f64| if v.abs() < TINY { TINY } else { v };
    // One Lentz step with coefficient `aa`: updates c and d, returns the factor for h.
    let step = |aa: f64, c: &mut f64, d: &mut f64| -> f64 {
        *d = 1.0 / floor(1.0 + aa * *d);
        *c = floor(1.0 + aa / *c);
        *d * *c
    };
    let mut c = 1.0;
    let mut d = 1.0 / floor(1.0 - qab * x / qap);
    let mut h = d;
    for m in 1..MAX_ITER {
        let m = m as f64;
        let m2 = 2.0 * m;
        h *= step(m * (b - m) * x / ((qam + m2) * (a + m2)), &mut c, &mut d);
        let del = step(-(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)), &mut c, &mut d);
        h *= del;
        if (del - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// ln I_x(a, b), the regularized incomplete beta function, for a, b > 0 and 0 ≤ x ≤ 1.
pub fn ln_beta_inc(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if x >= 1.0 {
        return 0.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front + beta_cf(a, b, x).ln() - a.ln()
    } else {
        // 1 − I_{1−x}(b, a): the value is not small here, so the subtraction loses nothing that matters.
        let other = (ln_front + beta_cf(b, a, 1.0 - x).ln() - b.ln()).exp();
        (1.0 - other).max(TINY).ln()
    }
}

/// ln P(a, x), the regularized lower incomplete gamma function, for a > 0, x ≥ 0.
pub fn ln_gamma_p(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if x < a + 1.0 { ln_gamma_series(a, x) } else { (1.0 - ln_gamma_q_cf(a, x).exp()).max(TINY).ln() }
}

/// ln Q(a, x) = ln(1 − P(a, x)), the regularized upper incomplete gamma function.
pub fn ln_gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x < a + 1.0 { (1.0 - ln_gamma_series(a, x).exp()).max(TINY).ln() } else { ln_gamma_q_cf(a, x) }
}

fn ln_gamma_series(a: f64, x: f64) -> f64 {
    let mut ap = a;
    let mut sum = 1.0 / a;
    let mut del = sum;
    for _ in 0..MAX_ITER {
        ap += 1.0;
        del *= x / ap;
        sum += del;
        if del.abs() < sum.abs() * EPS {
            break;
        }
    }
    sum.ln() - x + a * x.ln() - ln_gamma(a)
}

fn ln_gamma_q_cf(a: f64, x: f64) -> f64 {
    let mut b = x + 1.0 - a;
    let mut c = 1.0 / TINY;
    let mut d = 1.0 / b;
    let mut h = d;
    for i in 1..MAX_ITER {
        let an = -(i as f64) * (i as f64 - a);
        b += 2.0;
        d = an * d + b;
        if d.abs() < TINY {
            d = TINY;
        }
        c = b + an / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < EPS {
            break;
        }
    }
    h.ln() - x + a * x.ln() - ln_gamma(a)
}

/// Above this size (k) relative to the mean the negative binomial is treated as its Poisson limit: the
/// variance it adds is below 1e-6 of the Poisson variance and the incomplete beta would iterate for long.
const POISSON_LIMIT: f64 = 1e6;

/// ln P(X ≥ s) for X ~ NB(mean m, size k) (variance m + m²/k); `k = ∞` is Poisson. Continuous in s.
pub fn ln_nb_upper(s: f64, m: f64, k: f64) -> f64 {
    if s <= 0.0 {
        return 0.0;
    }
    if m <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if !k.is_finite() || k > POISSON_LIMIT * m.max(1.0) {
        // P(Poisson(m) ≥ s) = P(s, m).
        return ln_gamma_p(s, m).min(0.0);
    }
    // P(X ≥ s) = I_{m/(m+k)}(s, k).
    ln_beta_inc(s, k, m / (m + k)).min(0.0)
}

/// ln P(X ≤ s) for X ~ NB(mean m, size k); continuous in s.
pub fn ln_nb_lower(s: f64, m: f64, k: f64) -> f64 {
    if s < 0.0 {
        return f64::NEG_INFINITY;
    }
    if m <= 0.0 {
        return 0.0;
    }
    if !k.is_finite() || k > POISSON_LIMIT * m.max(1.0) {
        // P(Poisson(m) ≤ s) = Q(s + 1, m).
        return ln_gamma_q(s + 1.0, m).min(0.0);
    }
    // P(X ≤ s) = I_{k/(k+m)}(k, s + 1).
    ln_beta_inc(k, s + 1.0, k / (k + m)).min(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + b.abs())
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        let mut f = 1.0f64;
        for n in 1..30 {
            assert!(close(ln_gamma(n as f64), f.ln(), 1e-12), "n={n}");
            f *= n as f64;
        }
        assert!(close(ln_gamma(0.5), std::f64::consts::PI.sqrt().ln(), 1e-12));
    }

    #[test]
    fn poisson_tails_match_direct_sums() {
        for &m in &[0.01f64, 0.7, 3.0, 25.0, 400.0] {
            // Direct pmf sum.
            let mut pmf = (-m).exp();
            let mut cdf = 0.0f64;
            for s in 0..60u32 {
                if s > 0 {
                    pmf *= m / s as f64;
                }
                // P(X ≥ s) = 1 − cdf(s−1)
                let upper = 1.0 - cdf;
                if upper > 1e-8 && upper < 1.0 - 1e-9 && m < 100.0 {
                    assert!(close(ln_nb_upper(s as f64, m, f64::INFINITY), upper.ln(), 1e-6), "m={m} s={s}");
                }
                cdf += pmf;
                if cdf < 1.0 - 1e-9 && cdf > 1e-200 && m < 100.0 {
                    assert!(close(ln_nb_lower(s as f64, m, f64::INFINITY), cdf.ln(), 1e-6), "m={m} s={s}");
                }
            }
        }
    }

    #[test]
    fn negative_binomial_tails_match_direct_sums() {
        for &(m, k) in &[(0.5f64, 0.3f64), (4.0, 2.0), (30.0, 5.0), (2.0, 50.0)] {
            let p = k / (k + m);
            // pmf(0) = p^k; pmf(x+1) = pmf(x) · (x+k)/(x+1) · (1−p)
            let mut pmf = p.powf(k);
            let mut cdf = 0.0f64;
            for s in 0..200u32 {
                if s > 0 {
                    pmf *= (s as f64 - 1.0 + k) / s as f64 * (1.0 - p);
                }
                let upper = 1.0 - cdf;
                if upper > 1e-8 && upper < 1.0 - 1e-9 {
                    assert!(close(ln_nb_upper(s as f64, m, k), upper.ln(), 1e-6), "m={m} k={k} s={s}");
                }
                cdf += pmf;
                if cdf < 1.0 - 1e-9 {
                    assert!(close(ln_nb_lower(s as f64, m, k), cdf.ln(), 1e-6), "m={m} k={k} s={s}");
                }
            }
        }
    }

    #[test]
    fn extreme_tails_stay_finite_and_ordered() {
        let a = ln_nb_upper(1000.0, 10.0, 5.0);
        let b = ln_nb_upper(2000.0, 10.0, 5.0);
        assert!(a.is_finite() && b.is_finite() && b < a && a < -50.0);
        let c = ln_nb_upper(5000.0, 1000.0, f64::INFINITY);
        assert!(c.is_finite() && c < -1000.0);
    }
}
