//! The `Name=value, Name=value` list that follows the algorithm in both `ACS3-HMAC-SHA256` and
//! `OSS4-HMAC-SHA256` Authorization headers, parsed once for both: fields in any order, spaces after
//! commas tolerated (oss2 writes them, the others do not), a repeated field refused.

use crate::SignatureError;

/// Splits `rest` into the values of `names`, in the order of `names`. A field not in `names` is an error
/// when `unknown_is_error`, else ignored (ACS3 clients may add fields).
pub(crate) fn fields<const N: usize>(
    rest: &str,
    names: [&str; N],
    unknown_is_error: bool,
) -> Result<[Option<String>; N], SignatureError> {
    let mut values: [Option<String>; N] = std::array::from_fn(|_| None);
    for field in rest.split(',') {
        let (name, value) = field.trim().split_once('=').ok_or_else(|| {
            SignatureError::malformed("Authorization", format!("field {field:?} has no '='"))
        })?;
        let Some(slot) = names.iter().position(|n| *n == name) else {
            if unknown_is_error {
                return Err(SignatureError::malformed("Authorization", format!("unknown field {name:?}")));
            }
            continue;
        };
        if values[slot].replace(value.to_owned()).is_some() {
            return Err(SignatureError::malformed("Authorization", format!("{name} given twice")));
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_in_any_order_with_or_without_spaces() {
        let [a, b] = fields("B=2, A=1", ["A", "B"], true).unwrap();
        assert_eq!((a.as_deref(), b.as_deref()), (Some("1"), Some("2")));
        let [a, b] = fields("A=1", ["A", "B"], true).unwrap();
        assert_eq!((a.as_deref(), b), (Some("1"), None));
    }

    #[test]
    fn repeated_unknown_and_bare_fields() {
        assert!(fields("A=1,A=2", ["A"], true).is_err());
        assert!(fields("A=1,C=3", ["A"], true).is_err());
        assert!(fields("A=1,C=3", ["A"], false).is_ok());
        assert!(fields("A", ["A"], false).is_err());
    }
}
