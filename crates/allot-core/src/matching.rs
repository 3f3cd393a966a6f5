//! Which entitlements cover a case, and in which order they are chosen.

use std::cmp::Ordering;

use chrono::NaiveDate;
use serde::Serialize;

use crate::entitlement::{Entitlement, Status};
use crate::lifecycle::effective_status;

/// What a case (or an eligibility question) is about.
#[derive(Debug, Clone, Default)]
pub struct CaseScope<'a> {
    pub account_id: &'a str,
    /// The account's parent, grandparent, …: their pooled entitlements cover it.
    pub ancestors: &'a [String],
    pub contact_id: Option<&'a str>,
    pub product_id: Option<&'a str>,
    pub channel: Option<&'a str>,
}

/// The first rule an entitlement fails for a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum NotCovered {
    #[error("belongs to another account and is not pooled for this one")]
    OtherAccount,
    #[error("is {0}, not active")]
    NotActive(String),
    #[error("does not allow this contact")]
    ContactNotAllowed,
    #[error("does not cover this product")]
    ProductNotAllowed,
    #[error("has no terms for this channel")]
    ChannelNotCovered,
}

impl NotCovered {
    pub fn field(&self) -> &'static str {
        match self {
            NotCovered::OtherAccount => "account_id",
            NotCovered::NotActive(_) => "entitlement_id",
            NotCovered::ContactNotAllowed => "contact_id",
            NotCovered::ProductNotAllowed => "product_id",
            NotCovered::ChannelNotCovered => "channel",
        }
    }
}

pub fn covers(
    ent: &Entitlement,
    scope: &CaseScope<'_>,
    today: NaiveDate,
) -> Result<(), NotCovered> {
    let t = &ent.terms;
    let own = t.account_id == scope.account_id;
    let pooled_from_parent = t.pooled && scope.ancestors.contains(&t.account_id);
    if !(own || pooled_from_parent) {
        return Err(NotCovered::OtherAccount);
    }
    let status = effective_status(ent.status, t.start_date, t.end_date, today);
    if status != Status::Active {
        return Err(NotCovered::NotActive(status.as_str().into()));
    }
    if !t.contact_ids.is_empty()
        && !scope
            .contact_id
            .is_some_and(|c| t.contact_ids.iter().any(|x| x == c))
    {
        return Err(NotCovered::ContactNotAllowed);
    }
    if !t.product_ids.is_empty()
        && !scope
            .product_id
            .is_some_and(|p| t.product_ids.iter().any(|x| x == p))
    {
        return Err(NotCovered::ProductNotAllowed);
    }
    if let Some(channel) = scope.channel {
        if !t.channels.is_empty() && ent.channel_total(channel).is_none() {
            return Err(NotCovered::ChannelNotCovered);
        }
    }
    Ok(())
}

/// How narrowly an entitlement is scoped: a named contact, product or
/// channel each make it more specific than a catch-all.
fn specificity(ent: &Entitlement, scope: &CaseScope<'_>) -> u8 {
    let t = &ent.terms;
    u8::from(!t.contact_ids.is_empty())
        + u8::from(!t.product_ids.is_empty())
        + u8::from(scope.channel.is_some() && !t.channels.is_empty())
        + u8::from(t.account_id == scope.account_id)
}

fn order(a: &Entitlement, b: &Entitlement, scope: &CaseScope<'_>) -> Ordering {
    let is_default = |e: &Entitlement| e.terms.is_default && e.terms.account_id == scope.account_id;
    is_default(b)
        .cmp(&is_default(a))
        .then_with(|| specificity(b, scope).cmp(&specificity(a, scope)))
        .then_with(|| a.terms.end_date.cmp(&b.terms.end_date))
        .then_with(|| a.id.cmp(&b.id))
}

/// Every candidate that covers the case, best first: the account's default,
/// then the most specific, then the one ending soonest.
pub fn eligible<'e>(
    candidates: &'e [Entitlement],
    scope: &CaseScope<'_>,
    today: NaiveDate,
) -> Vec<&'e Entitlement> {
    let mut out: Vec<&Entitlement> = candidates
        .iter()
        .filter(|e| covers(e, scope, today).is_ok())
        .collect();
    out.sort_by(|a, b| order(a, b, scope));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entitlement::ChannelTerm;
    use crate::quantity::Quantity;
    use crate::test_support::{active, day, terms};

    fn ent(id: &str, f: impl FnOnce(&mut crate::entitlement::Terms)) -> Entitlement {
        let mut t = terms();
        f(&mut t);
        let mut e = active(t);
        e.id = id.into();
        e
    }

    #[test]
    fn default_first_then_specific_then_ending_soonest() {
        let today = day(2026, 6, 1);
        let list = vec![
            ent("ent_a", |_| {}),
            ent("ent_b", |t| t.end_date = day(2026, 7, 1)),
            ent("ent_c", |t| t.product_ids = vec!["prd_1".into()]),
            ent("ent_d", |t| t.is_default = true),
        ];
        let scope = CaseScope {
            account_id: "acc_1",
            product_id: Some("prd_1"),
            ..Default::default()
        };
        let ids: Vec<&str> = eligible(&list, &scope, today)
            .iter()
            .map(|e| e.id.as_str())
            .collect();
        assert_eq!(ids, vec!["ent_d", "ent_c", "ent_b", "ent_a"]);
    }

    #[test]
    fn scopes_exclude() {
        let today = day(2026, 6, 1);
        let e = ent("ent_a", |t| {
            t.contact_ids = vec!["con_1".into()];
            t.channels = vec![ChannelTerm {
                channel: "phone".into(),
                total: Quantity::whole(1),
            }];
        });
        let mut scope = CaseScope {
            account_id: "acc_1",
            contact_id: Some("con_2"),
            ..Default::default()
        };
        assert_eq!(
            covers(&e, &scope, today),
            Err(NotCovered::ContactNotAllowed)
        );
        scope.contact_id = Some("con_1");
        scope.channel = Some("email");
        assert_eq!(
            covers(&e, &scope, today),
            Err(NotCovered::ChannelNotCovered)
        );
        scope.channel = Some("phone");
        assert_eq!(covers(&e, &scope, today), Ok(()));
        assert_eq!(
            covers(&e, &scope, day(2027, 1, 1)),
            Err(NotCovered::NotActive("expired".into()))
        );
    }

    #[test]
    fn pooled_parent_entitlements_cover_children() {
        let today = day(2026, 6, 1);
        let parent = ent("ent_p", |t| t.account_id = "acc_parent".into());
        let ancestors = vec!["acc_parent".to_string()];
        let scope = CaseScope {
            account_id: "acc_child",
            ancestors: &ancestors,
            ..Default::default()
        };
        assert_eq!(
            covers(&parent, &scope, today),
            Err(NotCovered::OtherAccount)
        );
        let pooled = ent("ent_p", |t| {
            t.account_id = "acc_parent".into();
            t.pooled = true;
        });
        assert_eq!(covers(&pooled, &scope, today), Ok(()));
    }

    #[test]
    fn specificity_counts_each_narrowing_once() {
        let phone = || {
            vec![ChannelTerm {
                channel: "phone".into(),
                total: Quantity::whole(1),
            }]
        };
        let everything = ent("ent_a", |t| {
            t.contact_ids = vec!["con_1".into()];
            t.product_ids = vec!["prd_1".into()];
            t.channels = phone();
        });
        let contact = ent("ent_b", |t| t.contact_ids = vec!["con_1".into()]);
        let pooled_product = ent("ent_c", |t| {
            t.account_id = "acc_parent".into();
            t.product_ids = vec!["prd_1".into()];
        });
        let with_channel = CaseScope {
            account_id: "acc_1",
            channel: Some("phone"),
            ..Default::default()
        };
        let no_channel = CaseScope {
            account_id: "acc_1",
            ..Default::default()
        };
        assert_eq!(specificity(&everything, &with_channel), 4);
        assert_eq!(specificity(&everything, &no_channel), 3);
        assert_eq!(specificity(&contact, &with_channel), 2);
        assert_eq!(specificity(&ent("ent_d", |_| {}), &with_channel), 1);
        assert_eq!(specificity(&pooled_product, &with_channel), 1);
        let channel_only = ent("ent_e", |t| t.channels = phone());
        assert_eq!(specificity(&channel_only, &with_channel), 2);
        assert_eq!(specificity(&channel_only, &no_channel), 1);
    }

    #[test]
    fn an_entitlement_without_channel_terms_covers_every_channel() {
        let scope = CaseScope {
            account_id: "acc_1",
            channel: Some("fax"),
            ..Default::default()
        };
        assert_eq!(
            covers(&ent("ent_a", |_| {}), &scope, day(2026, 6, 1)),
            Ok(())
        );
    }

    #[test]
    fn each_refusal_names_its_field() {
        let fields: Vec<&str> = [
            NotCovered::OtherAccount,
            NotCovered::NotActive("draft".into()),
            NotCovered::ContactNotAllowed,
            NotCovered::ProductNotAllowed,
            NotCovered::ChannelNotCovered,
        ]
        .iter()
        .map(NotCovered::field)
        .collect();
        assert_eq!(
            fields,
            vec![
                "account_id",
                "entitlement_id",
                "contact_id",
                "product_id",
                "channel"
            ]
        );
    }
}
