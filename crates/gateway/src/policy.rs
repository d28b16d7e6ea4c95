//! The capture policy (Kubernetes audit policy style): ordered rules matching method, path glob,
//! operation (eventName) and user choose a [`Level`]; the first rule that matches wins.

use crate::config::{Level, Rule};

/// What a rule is matched against.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub operation: &'a str,
    /// Every name the caller goes by (user name, ARN, JWT subject, access key id).
    pub users: &'a [&'a str],
}

#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub default_level: Level,
    pub rules: Vec<Rule>,
}

impl Policy {
    pub fn level(&self, call: &Call<'_>) -> Level {
        self.rules.iter().find(|r| matches(r, call)).map_or(self.default_level, |r| r.level)
    }
}

fn matches(rule: &Rule, call: &Call<'_>) -> bool {
    (rule.methods.is_empty() || rule.methods.iter().any(|m| m.eq_ignore_ascii_case(call.method)))
        && (rule.paths.is_empty() || rule.paths.iter().any(|p| glob(p, call.path, true)))
        && (rule.operations.is_empty() || rule.operations.iter().any(|p| glob(p, call.operation, false)))
        && (rule.users.is_empty() || rule.users.iter().any(|p| call.users.iter().any(|u| glob(p, u, false))))
}

/// Glob match. With `segments`, `*` stops at `/` and `**` crosses it; without, `*` matches anything.
/// `?` is one character. Iterative with one backtrack point per star kind (no exponential blow-up).
pub fn glob(pattern: &str, text: &str, segments: bool) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    glob_at(&p, &t, segments)
}

fn glob_at(p: &[char], t: &[char], segments: bool) -> bool {
    // Memoised over (pi, ti): patterns are short, paths are short; bounded by |p|·|t|.
    let mut memo = vec![None; (p.len() + 1) * (t.len() + 1)];
    fn go(p: &[char], t: &[char], pi: usize, ti: usize, seg: bool, memo: &mut [Option<bool>]) -> bool {
        let key = pi * (t.len() + 1) + ti;
        if let Some(v) = memo[key] {
            return v;
        }
        let r = if pi == p.len() {
            ti == t.len()
        } else if p[pi] == '*' {
            let double = seg && p.get(pi + 1) == Some(&'*');
            let next = if double { pi + 2 } else { pi + 1 };
            let crosses = double || !seg;
            let mut k = ti;
            loop {
                if go(p, t, next, k, seg, memo) {
                    break true;
                }
                if k == t.len() || (!crosses && t[k] == '/') {
                    break false;
                }
                k += 1;
            }
        } else if ti < t.len() && (p[pi] == t[ti] || (p[pi] == '?' && !(seg && t[ti] == '/'))) {
            go(p, t, pi + 1, ti + 1, seg, memo)
        } else {
            false
        };
        memo[key] = Some(r);
        r
    }
    go(p, t, 0, 0, segments, &mut memo)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(level: Level, methods: &[&str], paths: &[&str], ops: &[&str], users: &[&str]) -> Rule {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
        Rule { level, methods: v(methods), paths: v(paths), operations: v(ops), users: v(users) }
    }

    #[test]
    fn globs_respect_segments() {
        assert!(glob("/pets/*", "/pets/7", true));
        assert!(!glob("/pets/*", "/pets/7/toys", true));
        assert!(glob("/pets/**", "/pets/7/toys", true));
        assert!(glob("/p?ts", "/pets", true));
        assert!(!glob("/p?ts", "/p/ts", true));
        assert!(glob("Get*", "GetSecretValue", false));
        assert!(glob("*", "a/b", false));
        assert!(!glob("List*", "GetSecretValue", false));
        assert!(glob("**/health", "/a/b/health", true));
    }

    #[test]
    fn the_first_matching_rule_wins_and_unmatched_calls_get_the_default() {
        let policy = Policy {
            default_level: Level::RequestResponse,
            rules: vec![
                rule(Level::None, &["get"], &["/healthz"], &[], &[]),
                rule(Level::Metadata, &[], &[], &["GetSecret*"], &[]),
                rule(Level::Request, &[], &[], &[], &["arn:aws:iam::*:user/robot-*"]),
                rule(Level::RequestResponse, &[], &["/**"], &[], &[]),
            ],
        };
        let call = |method, path, operation, users: &'static [&'static str]| Call { method, path, operation, users };
        assert_eq!(policy.level(&call("GET", "/healthz", "GET /healthz", &[])), Level::None);
        assert_eq!(policy.level(&call("POST", "/healthz", "POST /healthz", &[])), Level::RequestResponse);
        assert_eq!(policy.level(&call("POST", "/", "GetSecretValue", &["John"])), Level::Metadata);
        let robot: &[&str] = &["robot-1", "arn:aws:iam::123456789012:user/robot-1"];
        assert_eq!(policy.level(&call("POST", "/", "PutItem", robot)), Level::Request);
        let empty = Policy { default_level: Level::Metadata, rules: vec![] };
        assert_eq!(empty.level(&call("GET", "/x", "x", &[])), Level::Metadata);
    }
}
