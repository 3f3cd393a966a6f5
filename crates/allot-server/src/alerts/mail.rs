//! Alert e-mail: what it says (`compose`, plain text and HTML naming the
//! account, the entitlement, used/total/remaining and what to do next) and
//! how it leaves (`Mailer`, SMTP with lettre). Which events mail whom is
//! configuration (`AlertSettings::mail_manager_on`, `mail_owner_on`).

use std::time::Duration;

use allot_core::balance::Balance;
use allot_store::model::{Account, EntitlementRecord, Event};
use chrono::{DateTime, Utc};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use reqwest::Url;

use super::webhook::Tried;
use crate::config::AlertSettings;

/// How long one message may take to hand over.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    pub subject: String,
    pub text: String,
    pub html: String,
}

fn figure(q: Option<allot_core::Quantity>) -> String {
    q.map_or_else(|| "unlimited".to_string(), |q| q.to_string())
}

/// What the reader should do about an event of this kind.
fn next_step(kind: &str) -> &'static str {
    match kind {
        "entitlement.threshold_crossed" => {
            "Most of the allotment is used: a good moment to talk to the customer about an upgrade."
        }
        "entitlement.exhausted" => {
            "Nothing is left: further use is refused (or billed as overage) until the entitlement is renewed or adjusted."
        }
        "entitlement.overage" => {
            "Use went past the allotment: review the overage with the customer and consider an upgrade."
        }
        "entitlement.expiring_soon" => {
            "The entitlement ends soon: arrange its renewal with the customer."
        }
        "entitlement.period_reset" => {
            "A period closed with allotment left unused: report it to the renewals team."
        }
        _ => "See the entitlement in Allot for details.",
    }
}

fn headline(kind: &str) -> String {
    kind.rsplit('.').next().unwrap_or(kind).replace('_', " ")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The message about `event`, from the entitlement's balance today.
pub fn compose(
    event: &Event,
    account: &Account,
    record: &EntitlementRecord,
    balance: &Balance,
) -> Letter {
    let terms = &record.entitlement.terms;
    let unit = terms.unit.as_str();
    let what = headline(&event.kind);
    let subject = format!(
        "{}: {} {what} ({} of {} {unit} used)",
        account.name,
        terms.name,
        balance.used,
        figure(balance.total)
    );
    let mut facts = vec![
        ("Account", account.name.clone()),
        (
            "Entitlement",
            format!("{} ({})", terms.name, record.entitlement.id),
        ),
        ("Used", format!("{} {unit}", balance.used)),
        ("Total", format!("{} {unit}", figure(balance.total))),
        ("Remaining", format!("{} {unit}", figure(balance.remaining))),
        ("Ends", terms.end_date.to_string()),
    ];
    if let Some(unused) = event.data.get("unused").filter(|u| !u.is_null()) {
        facts.push(("Unused in the closed period", format!("{unused} {unit}")));
    }
    let step = next_step(&event.kind);
    let mut text = format!("{} - {what}\n\n", terms.name);
    for (label, value) in &facts {
        text.push_str(&format!("{label}: {value}\n"));
    }
    text.push_str(&format!(
        "\nNext: {step}\n\nEvent {} ({})\n",
        event.id, event.kind
    ));
    let rows: String = facts
        .iter()
        .map(|(label, value)| {
            format!(
                "<tr><th align=\"left\">{}</th><td>{}</td></tr>",
                escape(label),
                escape(value)
            )
        })
        .collect();
    let html = format!(
        "<html><body><h2>{} - {}</h2><table>{rows}</table><p><strong>Next:</strong> {}</p><p><small>Event {} ({})</small></p></body></html>",
        escape(&terms.name),
        escape(&what),
        escape(step),
        escape(&event.id),
        escape(&event.kind)
    );
    Letter {
        subject,
        text,
        html,
    }
}

/// An SMTP connection: `smtp://[user:password@]host:port`, upgraded with
/// STARTTLS when the server offers it (certificates checked against the
/// Mozilla roots), plain otherwise.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// `None` without `smtp_url`: no e-mail is sent.
    pub fn from_settings(settings: &AlertSettings) -> Result<Option<Mailer>, String> {
        let Some(url) = &settings.smtp_url else {
            return Ok(None);
        };
        let parsed = Url::parse(url).map_err(|e| format!("smtp_url: {e}"))?;
        if parsed.scheme() != "smtp" {
            return Err("smtp_url must be smtp://host:port".into());
        }
        let host = parsed.host_str().ok_or("smtp_url names no host")?;
        let tls = TlsParameters::new(host.to_string()).map_err(|e| format!("smtp_url: {e}"))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(parsed.port().unwrap_or(25))
            .tls(Tls::Opportunistic(tls))
            .timeout(Some(SEND_TIMEOUT));
        if !parsed.username().is_empty() {
            let password = parsed.password().unwrap_or_default();
            builder = builder.credentials(Credentials::new(
                parsed.username().to_string(),
                password.to_string(),
            ));
        }
        let from = settings
            .smtp_from
            .parse()
            .map_err(|e| format!("smtp_from: {e}"))?;
        Ok(Some(Mailer {
            transport: builder.build(),
            from,
        }))
    }

    pub async fn deliver(&self, to: &str, letter: &Letter, now: DateTime<Utc>) -> Tried {
        Tried::timed(now, async {
            match self.send(to, letter).await {
                Ok(code) => (Some(code), None),
                Err((code, e)) => (code, Some(e)),
            }
        })
        .await
    }

    async fn send(&self, to: &str, letter: &Letter) -> Result<u16, (Option<u16>, String)> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| (None, format!("address {to}: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(letter.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                letter.text.clone(),
                letter.html.clone(),
            ))
            .map_err(|e| (None, format!("message: {e}")))?;
        match self.transport.send(message).await {
            Ok(response) => Ok(u16::from(response.code())),
            Err(e) => Err((e.status().map(u16::from), e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_what_people_typed() {
        assert_eq!(escape("<b>&\"x\""), "&lt;b&gt;&amp;&quot;x&quot;");
        assert_eq!(
            headline("entitlement.threshold_crossed"),
            "threshold crossed"
        );
        assert!(next_step("entitlement.period_reset").contains("renewals"));
        assert_ne!(next_step("entitlement.exhausted"), next_step("x.y"));
    }
}
