//! Exact decimal quantities.
//!
//! A `Quantity` is a whole number of thousandths, so totals, usage and
//! remaining always add up exactly; binary floating point never touches a
//! stored amount. JSON numbers are accepted by going through their shortest
//! decimal text, which is exact for every value this type can hold.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Thousandths per whole unit.
pub const SCALE: i64 = 1000;
/// The largest magnitude accepted at the edge: one trillion whole units.
pub const MAX_WHOLE: i64 = 1_000_000_000_000;
/// The largest magnitude a counter may reach (a thousand times `MAX_WHOLE`).
/// A change that would go past it is refused, so a counter plus any one
/// accepted quantity always fits in an `i64`: the arithmetic below never
/// overflows on what the rules let through.
pub const MAX_COUNTER_WHOLE: i64 = 1_000_000_000_000_000;
const _: () = assert!(MAX_COUNTER_WHOLE >= 1_000 * MAX_WHOLE);
const _: () = assert!((MAX_COUNTER_WHOLE * SCALE)
    .checked_add(MAX_WHOLE * SCALE)
    .is_some());

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Quantity(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("must be a decimal number such as 2 or 1.25")]
    NotANumber,
    #[error("allows at most 3 decimal places")]
    TooPrecise,
    #[error("must be at most {MAX_WHOLE}")]
    TooLarge,
    #[error("must not be negative")]
    Negative,
    #[error("must be greater than zero")]
    NotPositive,
    #[error("must be a whole number for {0}")]
    NotWhole(&'static str),
}

impl Quantity {
    pub const ZERO: Quantity = Quantity(0);

    pub const fn from_milli(milli: i64) -> Self {
        Quantity(milli)
    }

    pub const fn whole(n: i64) -> Self {
        Quantity(n * SCALE)
    }

    pub const fn milli(self) -> i64 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// Whether a counter may hold this amount (see `MAX_COUNTER_WHOLE`).
    pub fn within_counter_bounds(self) -> bool {
        self.0.unsigned_abs() <= (MAX_COUNTER_WHOLE * SCALE) as u64
    }

    pub fn is_whole(self) -> bool {
        self.0 % SCALE == 0
    }

    pub fn max(self, other: Quantity) -> Quantity {
        Quantity(self.0.max(other.0))
    }

    pub fn min(self, other: Quantity) -> Quantity {
        Quantity(self.0.min(other.0))
    }

    /// Rounds up (away from zero for positive amounts) to a multiple of `increment`.
    pub fn round_up_to(self, increment: Quantity) -> Quantity {
        if increment.0 <= 0 || self.0 <= 0 {
            return self;
        }
        let rem = self.0 % increment.0;
        if rem == 0 {
            self
        } else {
            Quantity(self.0 - rem + increment.0)
        }
    }

    /// The value as a JSON number, for responses.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / SCALE as f64
    }

    /// Percentage of `of` that `self` is, in whole hundredths of a percent.
    pub fn percent_of(self, of: Quantity) -> Option<i64> {
        if of.0 <= 0 {
            return None;
        }
        Some(((self.0 as i128 * 10_000) / of.0 as i128) as i64)
    }
}

// Overflow is asserted, never wrapped: quantities are bounded at the edge
// (`MAX_WHOLE`) and counters by the rules (`MAX_COUNTER_WHOLE`), so these
// cannot fail on anything the rules accept.
impl std::ops::Add for Quantity {
    type Output = Quantity;
    fn add(self, rhs: Quantity) -> Quantity {
        Quantity(self.0.checked_add(rhs.0).expect("quantity overflow"))
    }
}

impl std::ops::Sub for Quantity {
    type Output = Quantity;
    fn sub(self, rhs: Quantity) -> Quantity {
        Quantity(self.0.checked_sub(rhs.0).expect("quantity overflow"))
    }
}

impl std::ops::Neg for Quantity {
    type Output = Quantity;
    fn neg(self) -> Quantity {
        Quantity(self.0.checked_neg().expect("quantity overflow"))
    }
}

impl std::ops::AddAssign for Quantity {
    fn add_assign(&mut self, rhs: Quantity) {
        *self = *self + rhs;
    }
}

impl std::ops::SubAssign for Quantity {
    fn sub_assign(&mut self, rhs: Quantity) {
        *self = *self - rhs;
    }
}

impl std::iter::Sum for Quantity {
    fn sum<I: Iterator<Item = Quantity>>(iter: I) -> Quantity {
        iter.fold(Quantity::ZERO, |a, b| a + b)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let whole = abs / SCALE as u64;
        let frac = abs % SCALE as u64;
        if frac == 0 {
            write!(f, "{sign}{whole}")
        } else {
            let digits = format!("{frac:03}");
            write!(f, "{sign}{whole}.{}", digits.trim_end_matches('0'))
        }
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;

    /// Parses plain decimal text (`12`, `-1.5`, `0.125`); exponents are
    /// accepted only when they come from a JSON number's shortest form.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some((mantissa, exp)) = s.split_once(['e', 'E']) {
            let exp: i32 = exp.parse().map_err(|_| QuantityError::NotANumber)?;
            return parse_scientific(mantissa, exp);
        }
        let (negative, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty() && frac.is_empty() {
            return Err(QuantityError::NotANumber);
        }
        if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(QuantityError::NotANumber);
        }
        if digits.ends_with('.') || digits.starts_with('.') {
            return Err(QuantityError::NotANumber);
        }
        let frac = frac.trim_end_matches('0');
        if frac.len() > 3 {
            return Err(QuantityError::TooPrecise);
        }
        let whole = whole.trim_start_matches('0');
        if whole.len() > 13 {
            return Err(QuantityError::TooLarge);
        }
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| QuantityError::TooLarge)?
        };
        if whole > MAX_WHOLE {
            return Err(QuantityError::TooLarge);
        }
        let frac_milli: i64 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<3}")
                .parse()
                .map_err(|_| QuantityError::NotANumber)?
        };
        let milli = whole * SCALE + frac_milli;
        if milli > MAX_WHOLE * SCALE {
            return Err(QuantityError::TooLarge);
        }
        Ok(Quantity(if negative { -milli } else { milli }))
    }
}

fn parse_scientific(mantissa: &str, exp: i32) -> Result<Quantity, QuantityError> {
    if !(-30..=30).contains(&exp) {
        return Err(if exp > 0 {
            QuantityError::TooLarge
        } else {
            QuantityError::TooPrecise
        });
    }
    let (negative, digits) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(QuantityError::NotANumber);
    }
    let all: String = format!("{whole}{frac}");
    let point = whole.len() as i32 + exp;
    let plain = if point <= 0 {
        format!("0.{}{}", "0".repeat((-point) as usize), all)
    } else if point as usize >= all.len() {
        format!("{}{}", all, "0".repeat(point as usize - all.len()))
    } else {
        format!("{}.{}", &all[..point as usize], &all[point as usize..])
    };
    let q: Quantity = plain.parse()?;
    Ok(if negative { -q } else { q })
}

impl Serialize for Quantity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.is_whole() {
            serializer.serialize_i64(self.0 / SCALE)
        } else {
            serializer.serialize_f64(self.as_f64())
        }
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(deserializer)?;
        Quantity::from_json(&value).map_err(D::Error::custom)
    }
}

impl Quantity {
    /// Reads a JSON number or decimal string.
    pub fn from_json(value: &serde_json::Value) -> Result<Quantity, QuantityError> {
        match value {
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    if i.unsigned_abs() > MAX_WHOLE as u64 {
                        return Err(QuantityError::TooLarge);
                    }
                    return Ok(Quantity::whole(i));
                }
                if n.as_u64().is_some() {
                    return Err(QuantityError::TooLarge);
                }
                let f = n.as_f64().ok_or(QuantityError::NotANumber)?;
                if !f.is_finite() {
                    return Err(QuantityError::NotANumber);
                }
                if f.abs() > MAX_WHOLE as f64 {
                    return Err(QuantityError::TooLarge);
                }
                // `{}` on f64 prints the shortest text that reads back as the
                // same double, which is the text the client wrote for any
                // value with 15 or fewer significant digits.
                format!("{f}").parse()
            }
            serde_json::Value::String(s) => s.parse(),
            _ => Err(QuantityError::NotANumber),
        }
    }
}

impl Quantity {
    /// Reads a stored counter: what `Serialize` wrote, which may pass the
    /// edge's `MAX_WHOLE` (a counter adds up many accepted quantities and
    /// corrections) up to `MAX_COUNTER_WHOLE`.
    pub fn counter_from_json(value: &serde_json::Value) -> Result<Quantity, QuantityError> {
        match Quantity::from_json(value) {
            Err(QuantityError::TooLarge) => {}
            read => return read,
        }
        let counter = match value.as_i64() {
            Some(whole) => whole.checked_mul(SCALE).map(Quantity),
            // What `Serialize` wrote for a fraction is the nearest double;
            // thousandths are exact up to about 4e12 whole units.
            None => value
                .as_f64()
                .map(|f| Quantity((f * SCALE as f64).round() as i64)),
        };
        counter
            .filter(|q| q.within_counter_bounds())
            .ok_or(QuantityError::TooLarge)
    }
}

/// `deserialize_with` for a stored counter (`Quantity::counter_from_json`).
pub fn deserialize_counter<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Quantity, D::Error> {
    use serde::de::Error;
    let value = serde_json::Value::deserialize(deserializer)?;
    Quantity::counter_from_json(&value).map_err(D::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A channel's counter may pass the edge's bound (a manager's
    /// correction of a trillion on top of what was used); it must still
    /// read back, exactly, up to the counters' own bound.
    #[test]
    fn stored_counters_read_back_past_the_edge_bound() {
        let read = |json: &str| Quantity::counter_from_json(&serde_json::from_str(json).unwrap());
        for milli in [
            1_000_000_001_100_000,
            1_000_000_001_100_500,
            MAX_COUNTER_WHOLE * SCALE,
            -1_000_000_001_100_500,
            1_250,
        ] {
            let q = Quantity::from_milli(milli);
            assert_eq!(read(&serde_json::to_string(&q).unwrap()), Ok(q), "{milli}");
        }
        assert_eq!(read("\"2.5\""), Ok(Quantity::from_milli(2_500)));
        assert_eq!(read("1000000000000001"), Err(QuantityError::TooLarge));
        assert_eq!(read("1000000000000000.5"), Err(QuantityError::TooLarge));
        assert_eq!(read("\"1000000000001\""), Err(QuantityError::TooLarge));
        assert_eq!(read("9223372036854775807"), Err(QuantityError::TooLarge));
        assert_eq!(read("\"x\""), Err(QuantityError::NotANumber));
        // As a stored channel counter names its fields.
        let stored: crate::balance::ChannelCounter =
            serde_json::from_str(r#"{"used": 1000000001100, "held": 0.5}"#).unwrap();
        assert_eq!(stored.used, Quantity::whole(1_000_000_001_100));
        assert_eq!(stored.held, Quantity::from_milli(500));
        // The edge keeps its own bound.
        assert_eq!(
            Quantity::from_json(&serde_json::json!(1_000_000_000_001_i64)),
            Err(QuantityError::TooLarge)
        );
    }

    fn q(s: &str) -> Quantity {
        s.parse().unwrap()
    }

    #[test]
    fn counter_bounds_are_inclusive_and_symmetric() {
        let edge = Quantity::whole(MAX_COUNTER_WHOLE);
        let past = edge + Quantity::from_milli(1);
        assert!(edge.within_counter_bounds() && (-edge).within_counter_bounds());
        assert!(!past.within_counter_bounds() && !(-past).within_counter_bounds());
    }

    #[test]
    fn parses_plain_decimals() {
        assert_eq!(q("2").milli(), 2000);
        assert_eq!(q("1.5").milli(), 1500);
        assert_eq!(q("0.125").milli(), 125);
        assert_eq!(q("-0.25").milli(), -250);
        assert_eq!(q("1.2500").milli(), 1250);
        assert_eq!(q("007").milli(), 7000);
    }

    #[test]
    fn rejects_bad_text() {
        for bad in [
            "", "-", ".", "1.", ".5", "abc", "1,5", "1.2.3", "--1", "0x10", "NaN", "inf",
        ] {
            assert_eq!(
                bad.parse::<Quantity>(),
                Err(QuantityError::NotANumber),
                "{bad:?}"
            );
        }
        assert_eq!("1.0001".parse::<Quantity>(), Err(QuantityError::TooPrecise));
        assert_eq!(
            "10000000000000".parse::<Quantity>(),
            Err(QuantityError::TooLarge)
        );
    }

    #[test]
    fn reads_json_numbers_and_strings_exactly() {
        let j = |s: &str| Quantity::from_json(&serde_json::from_str(s).unwrap());
        assert_eq!(j("0.1").unwrap().milli(), 100);
        assert_eq!(j("0.3").unwrap().milli(), 300);
        assert_eq!(j("\"2.75\"").unwrap().milli(), 2750);
        assert_eq!(j("1e2").unwrap().milli(), 100_000);
        assert_eq!(j("1e-3").unwrap().milli(), 1);
        assert_eq!(j("1.5e-3"), Err(QuantityError::TooPrecise));
        assert_eq!(j("1.0005"), Err(QuantityError::TooPrecise));
        assert_eq!(j("1e300"), Err(QuantityError::TooLarge));
        assert_eq!(j("18446744073709551615"), Err(QuantityError::TooLarge));
        assert_eq!(j("true"), Err(QuantityError::NotANumber));
        assert_eq!(j("null"), Err(QuantityError::NotANumber));
    }

    #[test]
    fn rounds_up_to_increment() {
        assert_eq!(q("0.1").round_up_to(q("0.25")), q("0.25"));
        assert_eq!(q("0.25").round_up_to(q("0.25")), q("0.25"));
        assert_eq!(q("1.26").round_up_to(q("0.25")), q("1.5"));
        assert_eq!(q("1.26").round_up_to(Quantity::ZERO), q("1.26"));
    }

    #[test]
    fn serializes_as_json_numbers() {
        assert_eq!(serde_json::to_string(&q("3")).unwrap(), "3");
        assert_eq!(serde_json::to_string(&q("0.1")).unwrap(), "0.1");
        assert_eq!(serde_json::to_string(&q("-2.125")).unwrap(), "-2.125");
    }

    #[test]
    fn the_largest_quantity_is_accepted_and_one_thousandth_more_refused() {
        let max = Quantity::whole(MAX_WHOLE);
        assert_eq!("1000000000000".parse::<Quantity>(), Ok(max));
        assert_eq!("-1000000000000".parse::<Quantity>(), Ok(-max));
        assert_eq!(
            "1000000000000.001".parse::<Quantity>(),
            Err(QuantityError::TooLarge)
        );
        assert_eq!(
            "1000000000001".parse::<Quantity>(),
            Err(QuantityError::TooLarge)
        );
        assert_eq!(
            "99999999999999999999".parse::<Quantity>(),
            Err(QuantityError::TooLarge)
        );
        assert_eq!(
            "999999999999.999".parse::<Quantity>().map(Quantity::milli),
            Ok(MAX_WHOLE * SCALE - 1)
        );
        let j = |s: &str| Quantity::from_json(&serde_json::from_str(s).unwrap());
        assert_eq!(j("1000000000000"), Ok(max));
        assert_eq!(j("-1000000000000"), Ok(-max));
        assert_eq!(j("1000000000001"), Err(QuantityError::TooLarge));
        assert_eq!(j("1e12"), Ok(max));
        assert_eq!(j("-1e12"), Ok(-max));
        assert_eq!(j("1.000000000001e12"), Err(QuantityError::TooLarge));
        assert_eq!(j("1e-31"), Err(QuantityError::TooPrecise));
    }

    #[test]
    fn scientific_text_is_read_exactly() {
        let s = |t: &str| t.parse::<Quantity>().map(Quantity::milli);
        assert_eq!(s("1.5e2"), Ok(150_000));
        assert_eq!(s("-1.5e2"), Ok(-150_000));
        assert_eq!(s("25e-3"), Ok(25));
        assert_eq!(s("12.5e-1"), Ok(1250));
        assert_eq!(s("125e-2"), Ok(1250));
        assert_eq!(s("1e0"), Ok(1000));
        assert_eq!(s("1E3"), Ok(1_000_000));
        assert_eq!(s("1e30"), Err(QuantityError::TooLarge));
        assert_eq!(s("1e-30"), Err(QuantityError::TooPrecise));
        assert_eq!(s("1e31"), Err(QuantityError::TooLarge));
        assert_eq!(s("-1e31"), Err(QuantityError::TooLarge));
        assert_eq!(s("1e-31"), Err(QuantityError::TooPrecise));
        assert_eq!(s("0.5e-2"), Ok(5));
        assert_eq!(s("5e-4"), Err(QuantityError::TooPrecise));
        for bad in [
            "e5", "1ae2", "1.5ae2", "-e2", "1e", "1e2.5", "x1e2", "+1e2", "1 e2", "1.5 e2",
        ] {
            assert_eq!(s(bad), Err(QuantityError::NotANumber), "{bad:?}");
        }
    }

    #[test]
    fn zero_and_negatives_display_with_the_right_sign() {
        assert_eq!(Quantity::ZERO.to_string(), "0");
        assert_eq!(q("-0.5").to_string(), "-0.5");
        assert_eq!(q("-2").to_string(), "-2");
        assert_eq!(q("12.05").to_string(), "12.05");
        assert_eq!(q("+3").milli(), 3000);
    }

    #[test]
    fn arithmetic_is_exact() {
        let (a, b) = (q("2.5"), q("0.75"));
        assert_eq!(a + b, q("3.25"));
        assert_eq!(a - b, q("1.75"));
        assert_eq!(-a, q("-2.5"));
        let mut c = a;
        c += b;
        assert_eq!(c, q("3.25"));
        c -= q("0.5");
        assert_eq!(c, q("2.75"));
        assert_eq!([a, b, q("-1")].into_iter().sum::<Quantity>(), q("2.25"));
        assert_eq!(a.max(b), a);
        assert_eq!(a.min(b), b);
        assert_eq!(a.as_f64(), 2.5);
        assert_eq!(q("-0.125").as_f64(), -0.125);
    }

    #[test]
    fn sign_and_wholeness() {
        assert!(Quantity::ZERO.is_zero() && !q("0.001").is_zero());
        assert!(q("-0.001").is_negative());
        assert!(!Quantity::ZERO.is_negative() && !q("1").is_negative());
        assert!(q("3").is_whole() && q("-3").is_whole() && Quantity::ZERO.is_whole());
        assert!(!q("3.5").is_whole() && !q("0.001").is_whole());
    }

    #[test]
    fn percent_of_is_in_hundredths_of_a_percent() {
        assert_eq!(q("5").percent_of(q("10")), Some(5000));
        assert_eq!(q("1").percent_of(q("3")), Some(3333));
        assert_eq!(q("15").percent_of(q("10")), Some(15000));
        assert_eq!(q("0.001").percent_of(q("1000")), Some(0));
        assert_eq!(q("1").percent_of(Quantity::ZERO), None);
        assert_eq!(q("1").percent_of(q("-1")), None);
    }

    #[test]
    fn only_positive_amounts_round_up() {
        let inc = q("0.25");
        assert_eq!(q("-0.1").round_up_to(inc), q("-0.1"));
        assert_eq!(Quantity::ZERO.round_up_to(inc), Quantity::ZERO);
        assert_eq!(q("1.1").round_up_to(q("-0.25")), q("1.1"));
        assert_eq!(q("0.001").round_up_to(inc), inc);
    }

    proptest! {
        #[test]
        fn text_round_trips(milli in -MAX_WHOLE * SCALE..=MAX_WHOLE * SCALE) {
            let quantity = Quantity::from_milli(milli);
            prop_assert_eq!(quantity.to_string().parse::<Quantity>(), Ok(quantity));
        }

        #[test]
        fn json_round_trips(milli in -MAX_WHOLE * SCALE..=MAX_WHOLE * SCALE) {
            let quantity = Quantity::from_milli(milli);
            let json = serde_json::to_value(quantity).unwrap();
            prop_assert_eq!(Quantity::from_json(&json), Ok(quantity));
        }

        #[test]
        fn round_up_is_smallest_multiple_at_least(milli in 1i64..10_000_000, inc in 1i64..10_000) {
            let r = Quantity::from_milli(milli).round_up_to(Quantity::from_milli(inc)).milli();
            prop_assert!(r >= milli && r % inc == 0 && r - milli < inc);
        }
    }
}
