//! The words of a request that SLOWLOG and MONITOR show as `(redacted)`,
//! as Redis hides them: every argument of AUTH, the user name and password
//! after HELLO's AUTH, and the value of CONFIG SET `requirepass` or
//! `masterauth`.

use bytes::Bytes;

/// Whether word `i` of `words` (the command name first) is a secret.
pub(crate) fn secret(words: &[Bytes]) -> impl Fn(usize) -> bool + '_ {
    let name = words.first().map(|w| w.to_ascii_lowercase()).unwrap_or_default();
    let hello_auth = (name == b"hello").then(|| words.iter().position(|w| w.eq_ignore_ascii_case(b"AUTH"))).flatten();
    move |i| match name.as_slice() {
        b"auth" => i >= 1,
        b"hello" => hello_auth.is_some_and(|at| i == at + 1 || i == at + 2),
        b"config" => {
            i >= 3 && [&b"requirepass"[..], b"masterauth"].iter().any(|name| words[i - 1].eq_ignore_ascii_case(name))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hidden(line: &str) -> Vec<usize> {
        let words: Vec<Bytes> = line.split(' ').map(|w| Bytes::copy_from_slice(w.as_bytes())).collect();
        let secret = secret(&words);
        (0..words.len()).filter(|i| secret(*i)).collect()
    }

    #[test]
    fn passwords_are_found_where_redis_hides_them() {
        assert_eq!(hidden("AUTH user pass"), [1, 2]);
        assert_eq!(hidden("HELLO 3 AUTH user pass SETNAME x"), [3, 4]);
        assert_eq!(hidden("CONFIG SET timeout 1 requirepass p"), [5]);
        assert_eq!(hidden("SET requirepass v"), Vec::<usize>::new());
    }
}
