//! Plan output: JSON (SPEC section 5), CSV (safe to open in a spreadsheet) and a terminal table.

use std::fmt::Write as _;

use crate::plan::{Plan, SkipStatus};

/// The plan as pretty-printed JSON, with a final newline. Byte-identical for identical plans.
pub fn to_json(plan: &Plan) -> String {
    let mut s = serde_json::to_string_pretty(plan).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

/// Quotes a CSV field and neutralises spreadsheet formulas: a text cell starting with `=`,
/// `+`, `-`, `@`, tab or carriage return is prefixed with `'` so that Excel or LibreOffice
/// shows it as text instead of running it (OWASP "CSV injection").
pub fn csv_field(text: &str) -> String {
    let safe = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text.to_owned() };
    if safe.contains([',', '"', '\n', '\r', ';']) {
        format!("\"{}\"", safe.replace('"', "\"\""))
    } else {
        safe
    }
}

/// The actions of the plan as CSV (one line per action, header first).
pub fn to_csv(plan: &Plan) -> String {
    let mut out = String::from(
        "id,date,customer,customer_name,scenario,step,channel,template,assign,invoices,outstanding,currency,fees,interest,reason\n",
    );
    for a in &plan.actions {
        let text = [
            csv_field(&a.id),
            a.date.to_string(),
            csv_field(&a.customer),
            csv_field(&a.customer_name),
            csv_field(&a.scenario),
            csv_field(&a.step),
            csv_field(&a.channel),
            csv_field(&a.template),
            csv_field(a.assign.as_deref().unwrap_or("")),
            csv_field(&a.invoices.join(" ")),
            a.outstanding.to_string(),
            a.currency.code().to_owned(),
            a.fees.to_string(),
            a.interest.to_string(),
            csv_field(&a.reason),
        ];
        out.push_str(&text.join(","));
        out.push('\n');
    }
    out
}

fn pad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n > width {
        let cut: String = s.chars().take(width.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        format!("{s}{}", " ".repeat(width - n))
    }
}

/// A readable terminal table of the actions, followed by counts of skipped steps,
/// unassigned customers and errors.
pub fn to_table(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Plan as of {} (scenarios {})", plan.as_of, plan.scenarios_hash.chars().take(12).collect::<String>());
    let _ = writeln!(out);
    let header = [("customer", 26), ("scenario", 18), ("step", 6), ("channel", 17), ("template", 18), ("invoices", 20)];
    let mut line = String::new();
    for (h, w) in header {
        line.push_str(&pad(h, w));
        line.push(' ');
    }
    let _ = writeln!(out, "{line}{:>12} {:>9} {:>9}", "outstanding", "fees", "interest");
    for a in &plan.actions {
        let who = format!("{} {}", a.customer, a.customer_name);
        let cols = [
            pad(&who, 26),
            pad(&a.scenario, 18),
            pad(&a.step, 6),
            pad(&a.channel, 17),
            pad(&a.template, 18),
            pad(&a.invoices.join(" "), 20),
        ];
        let _ = writeln!(
            out,
            "{} {:>12} {:>9} {:>9} {}",
            cols.join(" "),
            a.outstanding.to_string(),
            a.fees.to_string(),
            a.interest.to_string(),
            a.currency.code()
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "{} action(s)", plan.actions.len());
    let statuses = [
        SkipStatus::Superseded,
        SkipStatus::Paused,
        SkipStatus::Stopped,
        SkipStatus::Deferred,
        SkipStatus::Expired,
        SkipStatus::BelowMinimum,
        SkipStatus::ConditionFalse,
    ];
    let counts: Vec<String> = statuses
        .iter()
        .filter_map(|s| {
            let n = plan.skipped.iter().filter(|k| k.status == *s).count();
            (n > 0).then(|| format!("{n} {}", s.as_str()))
        })
        .collect();
    if !counts.is_empty() {
        let _ = writeln!(out, "skipped: {}", counts.join(", "));
    }
    if !plan.unassigned.is_empty() {
        let _ = writeln!(out, "{} unassigned customer(s):", plan.unassigned.len());
        for u in &plan.unassigned {
            let _ = writeln!(out, "  {} (segment `{}`, {} open invoice(s))", u.customer, u.segment, u.open_invoices);
        }
    }
    if !plan.errors.is_empty() {
        let _ = writeln!(out, "{} error(s):", plan.errors.len());
        for e in &plan.errors {
            let _ = writeln!(out, "  {}: {}", e.customer, e.message);
        }
    }
    for w in &plan.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_cells_cannot_start_a_formula() {
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("+33 1 23"), "'+33 1 23");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("-2+3"), "'-2+3");
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }
}
