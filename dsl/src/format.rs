//! The canonical layout.
//!
//! - items separated by one blank line; blocks indented by two spaces;
//! - one setting, rule or step per line; step offsets padded to a common width inside a
//!   scenario, and `with …` clauses on continuation lines aligned under the channel;
//! - comments stay where they were: a comment on its own line stays on its own line
//!   before the next element, a comment at the end of a line stays at the end of the
//!   same element's line (trailing comments of a block are aligned in one column);
//! - one blank line inside a block is kept where the source had one or more.

use crate::ast::*;
use crate::check::offset_text;

#[derive(Debug)]
struct OutLine {
    text: String,
    comment: Option<String>,
    group: usize,
}

struct Printer<'a> {
    src: &'a str,
    comments: &'a [Comment],
    emitted: Vec<bool>,
    lines: Vec<OutLine>,
    group: usize,
    /// Source offset of the end of the last element emitted in the current block.
    last_end: Option<usize>,
    /// The last thing emitted at top level was an item.
    after_item: bool,
}

/// See [`crate::format()`].
pub(crate) fn format(file: &File, src: &str) -> String {
    let mut p = Printer {
        src,
        comments: &file.comments,
        emitted: vec![false; file.comments.len()],
        lines: Vec::new(),
        group: 0,
        last_end: None,
        after_item: false,
    };
    for item in &file.items {
        let start = match item {
            Item::Settings(s) => s.span.start,
            Item::Scenario(s) => s.span.start,
        };
        p.top_comments_before(start);
        if p.after_item || p.blank_between(start) {
            p.blank();
        }
        match item {
            Item::Settings(s) => p.settings(s),
            Item::Scenario(s) => p.scenario(s),
        }
        p.after_item = true;
        p.last_end = Some(match item {
            Item::Settings(s) => s.span.end,
            Item::Scenario(s) => s.span.end,
        });
    }
    p.top_comments_before(usize::MAX);
    p.render()
}

impl Printer<'_> {
    fn new_group(&mut self) {
        self.group += 1;
    }

    fn blank(&mut self) {
        if self.lines.last().is_some_and(|l| !(l.text.is_empty() && l.comment.is_none())) {
            self.lines.push(OutLine { text: String::new(), comment: None, group: 0 });
        }
    }

    fn line(&mut self, text: String, comment: Option<String>) {
        self.lines.push(OutLine { text, comment, group: self.group });
    }

    /// True when the source has a blank line between the last element and `pos`.
    fn blank_between(&self, pos: usize) -> bool {
        let Some(last) = self.last_end else { return false };
        let seg = self.src.get(last..pos.min(self.src.len())).unwrap_or("");
        let mut newlines = 0;
        for c in seg.chars() {
            match c {
                '\n' => {
                    newlines += 1;
                    if newlines >= 2 {
                        return true;
                    }
                }
                ' ' | '\t' | '\r' => {}
                _ => newlines = 0,
            }
        }
        false
    }

    fn line_end(&self, pos: usize) -> usize {
        let pos = pos.min(self.src.len());
        self.src[pos..].find('\n').map_or(self.src.len(), |i| pos + i)
    }

    fn take_in(&mut self, start: usize, end: usize) -> Vec<String> {
        let mut out = Vec::new();
        for (i, c) in self.comments.iter().enumerate() {
            if !self.emitted[i] && c.span.start >= start && c.span.start < end {
                self.emitted[i] = true;
                out.push(c.text.clone());
            }
        }
        out
    }

    /// Top-level comments before `pos`, each on its own line.
    fn top_comments_before(&mut self, pos: usize) {
        for i in 0..self.comments.len() {
            let c = &self.comments[i];
            if self.emitted[i] || c.span.start >= pos {
                continue;
            }
            self.emitted[i] = true;
            if self.after_item || self.blank_between(c.span.start) {
                self.blank();
            }
            self.after_item = false;
            let text = c.text.clone();
            self.last_end = Some(c.span.end);
            self.new_group();
            self.line(text, None);
        }
    }

    /// Block comments before `pos`, on their own lines at `indent`.
    fn comments_before(&mut self, pos: usize, indent: &str, first_in_block: &mut bool) {
        for i in 0..self.comments.len() {
            let c = &self.comments[i];
            if self.emitted[i] || c.span.start >= pos {
                continue;
            }
            self.emitted[i] = true;
            if !*first_in_block && self.blank_between(c.span.start) {
                self.blank();
            }
            *first_in_block = false;
            let text = format!("{indent}{}", c.text);
            self.last_end = Some(c.span.end);
            self.line(text, None);
        }
    }

    /// Emits an element made of output lines; `parts[i]` is the source offset where
    /// output line `i` starts. Comments inside the element or after it on its last
    /// source line become trailing comments of the line they follow (or own lines
    /// before the element when that line already has one).
    fn element(&mut self, span: Span, parts: &[usize], lines: Vec<String>, indent: &str, first_in_block: &mut bool) {
        self.comments_before(span.start, indent, first_in_block);
        if !*first_in_block && self.blank_between(span.start) {
            self.blank();
        }
        *first_in_block = false;
        let end = self.line_end(span.end);
        let mut trailing: Vec<Option<String>> = vec![None; lines.len()];
        let mut extra = Vec::new();
        for i in 0..self.comments.len() {
            let c = &self.comments[i];
            if self.emitted[i] || c.span.start < span.start || c.span.start >= end {
                continue;
            }
            self.emitted[i] = true;
            let idx = parts.iter().rposition(|p| *p <= c.span.start).unwrap_or(0).min(lines.len().saturating_sub(1));
            match trailing.get_mut(idx) {
                Some(slot @ None) => *slot = Some(c.text.clone()),
                _ => extra.push(c.text.clone()),
            }
        }
        for e in extra {
            self.line(format!("{indent}{e}"), None);
        }
        for (l, c) in lines.into_iter().zip(trailing) {
            self.line(l, c);
        }
        self.last_end = Some(span.end);
    }

    /// Offset of the `{` of a block whose header ends at `from`.
    fn brace_after(&self, from: usize) -> usize {
        let bytes = self.src.as_bytes();
        let mut i = from;
        while i < bytes.len() {
            match bytes[i] {
                b'{' => return i,
                b'#' => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                }
                _ => i += 1,
            }
        }
        from
    }

    fn open_block(&mut self, header: String, brace: usize, first_elem: Option<usize>) {
        self.top_comments_before(brace);
        // A comment after `{` on the same line belongs to the header, unless an element
        // starts on that line before it.
        let end = self.line_end(brace).min(first_elem.unwrap_or(usize::MAX));
        let trailing = self.take_in(brace, end);
        self.new_group();
        let mut it = trailing.into_iter();
        let first = it.next();
        self.line(header, first);
        self.new_group();
        for extra in it {
            self.line(format!("  {extra}"), None);
        }
        self.last_end = Some(brace + 1);
    }

    fn close_block(&mut self, close: usize, first_in_block: &mut bool) {
        self.comments_before(close, "  ", first_in_block);
        let end = self.line_end(close);
        let trailing = self.take_in(close, end);
        let mut it = trailing.into_iter();
        let first = it.next();
        self.new_group();
        self.line("}".to_string(), first);
        for extra in it {
            self.line(extra, None);
        }
        self.new_group();
    }

    fn settings(&mut self, s: &Settings) {
        let brace = self.brace_after(s.span.start + "settings".len());
        self.open_block("settings {".to_string(), brace, s.entries.first().map(|e| e.span.start));
        let mut first = true;
        for e in &s.entries {
            let text = format!("  {}", setting_text(&e.kind));
            self.element(e.span, &[e.span.start], vec![text], "  ", &mut first);
        }
        self.close_block(s.span.end.saturating_sub(1), &mut first);
    }

    fn scenario(&mut self, sc: &Scenario) {
        let brace = self.brace_after(sc.name.span.end);
        self.open_block(format!("scenario {} {{", quote(&sc.name.node)), brace, Some(sc.selector.span.start));
        let mut first = true;
        self.element(
            sc.selector.span,
            &[sc.selector.span.start],
            vec![format!("  {}", selector_text(&sc.selector))],
            "  ",
            &mut first,
        );
        let width = sc
            .entries
            .iter()
            .filter_map(|e| match e {
                ScenarioEntry::Step(s) => Some(offset_text(s.offset.node).len()),
                _ => None,
            })
            .max()
            .unwrap_or(0)
            + 2;
        for e in &sc.entries {
            match e {
                ScenarioEntry::Step(st) => {
                    let head = format!("  {:<width$}{}", offset_text(st.offset.node), action_head(&st.action));
                    let cont = " ".repeat(2 + width);
                    self.action_lines(st.span, st.span.start, head, &st.action, &cont, &mut first);
                }
                ScenarioEntry::Event(ev) => {
                    let kw = match ev.kind.node {
                        EventKind::AfterPayment => "after payment",
                        EventKind::BrokenPromise => "on broken promise",
                    };
                    let head = format!("  {kw} {}", action_head(&ev.action));
                    self.action_lines(ev.span, ev.span.start, head, &ev.action, "    ", &mut first);
                }
                ScenarioEntry::Pause(r) => {
                    self.element(
                        r.span,
                        &[r.span.start],
                        vec![format!("  pause when {}", expr_text(&r.condition))],
                        "  ",
                        &mut first,
                    );
                }
                ScenarioEntry::Stop(r) => {
                    self.element(
                        r.span,
                        &[r.span.start],
                        vec![format!("  stop when {}", expr_text(&r.condition))],
                        "  ",
                        &mut first,
                    );
                }
                ScenarioEntry::CountBusinessDays(span) => {
                    self.element(*span, &[span.start], vec!["  count business days".to_string()], "  ", &mut first);
                }
                ScenarioEntry::CatchUp(c) => {
                    let span = c.span;
                    self.element(
                        span,
                        &[span.start],
                        vec![format!("  catch up {}", catch_up_text(c.node))],
                        "  ",
                        &mut first,
                    );
                }
            }
        }
        self.close_block(sc.span.end.saturating_sub(1), &mut first);
    }

    fn action_lines(&mut self, span: Span, start: usize, head: String, a: &ActionSpec, cont: &str, first: &mut bool) {
        let mut lines = vec![head];
        let mut parts = vec![start];
        for ch in &a.charges {
            lines.push(format!("{cont}{}", charge_text(&ch.kind)));
            parts.push(ch.span.start);
        }
        // A charge written before `when` in the source: keep the mapping monotonic.
        for i in 1..parts.len() {
            if parts[i] < parts[i - 1] {
                parts[i] = parts[i - 1];
            }
        }
        self.element(span, &parts, lines, "  ", first);
    }

    fn render(self) -> String {
        let mut lines = self.lines;
        while lines.last().is_some_and(|l| l.text.is_empty() && l.comment.is_none()) {
            lines.pop();
        }
        // Trailing comments of one block are aligned in one column, after the longest
        // commented line of at most ALIGN_MAX characters; longer lines get two spaces.
        const ALIGN_MAX: usize = 60;
        let mut widths: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
        for l in &lines {
            let w = l.text.chars().count();
            if l.comment.is_some() && w <= ALIGN_MAX {
                let e = widths.entry(l.group).or_insert(0);
                *e = (*e).max(w);
            }
        }
        let col: Vec<usize> = lines
            .iter()
            .map(|l| {
                let w = l.text.chars().count();
                widths.get(&l.group).copied().unwrap_or(0).max(w)
            })
            .collect();
        let mut out = String::new();
        for (l, w) in lines.iter().zip(col) {
            out.push_str(&l.text);
            if let Some(c) = &l.comment {
                out.push_str(&" ".repeat(w - l.text.chars().count() + 2));
                out.push_str(c);
            }
            out.push('\n');
        }
        out
    }
}

fn setting_text(k: &SettingKind) -> String {
    match k {
        SettingKind::Currency(c) => format!("currency {}", c.node),
        SettingKind::Calendar(c) => format!("calendar {}", c.node),
        SettingKind::Law(c) => format!("law {}", c.node),
        SettingKind::Cooldown(n) => format!("cooldown {} {}", n.node, if n.node == 1 { "day" } else { "days" }),
        SettingKind::MinimumBalance(m) => format!("minimum balance {}", money_text(m)),
        SettingKind::Language(c) => format!("language {}", c.node),
        SettingKind::Functions(f) => format!("functions {}", quote(&f.node)),
        SettingKind::CatchUp(c) => format!("catch up {}", catch_up_text(c.node)),
        SettingKind::RatesAssumeUnchanged => "rates assume unchanged".to_string(),
    }
}

fn catch_up_text(c: CatchUp) -> &'static str {
    match c {
        CatchUp::Latest => "latest",
        CatchUp::Stepwise => "stepwise",
    }
}

fn selector_text(s: &Selector) -> String {
    match &s.kind {
        SelectorKind::Segments(list) => {
            format!("for segment {}", list.iter().map(|s| quote(&s.node)).collect::<Vec<_>>().join(", "))
        }
        SelectorKind::Where(e) => format!("for customers where {}", expr_text(e)),
        SelectorKind::Others => "for others".to_string(),
    }
}

fn action_head(a: &ActionSpec) -> String {
    let mut s = format!("{} {}", a.channel.node, quote(&a.template.node));
    if let Some(w) = &a.assign {
        s.push_str(&format!(" assign {}", quote(&w.node)));
    }
    if a.per_invoice.is_some() {
        s.push_str(" per invoice");
    }
    if let Some(c) = &a.condition {
        s.push_str(&format!(" when {}", expr_text(c)));
    }
    s
}

fn charge_text(c: &ChargeKind) -> String {
    match c {
        ChargeKind::FeeLegal => "with fee legal".to_string(),
        ChargeKind::FeeAmount(m) => format!("with fee {} per invoice", money_text(m)),
        ChargeKind::InterestLegal => "with interest legal".to_string(),
        ChargeKind::InterestFixed(r) => format!("with interest {}% per year", r.node),
        ChargeKind::InterestReference { reference, points } => {
            let sign = if points.node.is_sign_negative() && !points.node.is_zero() { "-" } else { "+" };
            let n = points.node.abs();
            let unit = if n == rust_decimal::Decimal::ONE { "point" } else { "points" };
            format!("with interest {} {sign} {n} {unit}", reference.node)
        }
    }
}

fn money_text(m: &Money) -> String {
    format!("{} {}", m.amount, m.currency.node)
}

/// A string literal with `"`, `\`, newline and tab escaped.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A condition as text; parentheses are those of the tree ([`ExprKind::Paren`]).
pub(crate) fn expr_text(e: &Expr) -> String {
    let mut s = String::new();
    write_expr(&mut s, e);
    s
}

fn write_expr(out: &mut String, e: &Expr) {
    match &e.kind {
        ExprKind::Or(a, b) => {
            write_expr(out, a);
            out.push_str(" or ");
            write_expr(out, b);
        }
        ExprKind::And(a, b) => {
            write_expr(out, a);
            out.push_str(" and ");
            write_expr(out, b);
        }
        ExprKind::Not(x) => {
            out.push_str("not ");
            write_expr(out, x);
        }
        ExprKind::Compare { lhs, op, rhs } => {
            write_expr(out, lhs);
            out.push(' ');
            out.push_str(op.node.as_str());
            out.push(' ');
            write_expr(out, rhs);
        }
        ExprKind::Has { lhs, rhs } => {
            write_expr(out, lhs);
            out.push_str(" has ");
            write_expr(out, rhs);
        }
        ExprKind::In { lhs, list } => {
            write_expr(out, lhs);
            out.push_str(" in [");
            for (i, x) in list.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_expr(out, x);
            }
            out.push(']');
        }
        ExprKind::Paren(x) => {
            out.push('(');
            write_expr(out, x);
            out.push(')');
        }
        ExprKind::Rhai(s) => {
            out.push_str("rhai ");
            out.push_str(&quote(&s.node));
        }
        ExprKind::Literal(l) => match l {
            Literal::Number(n) => out.push_str(&n.to_string()),
            Literal::String(s) => out.push_str(&quote(s)),
            Literal::Money(m) => out.push_str(&money_text(m)),
            Literal::Days(d) => out.push_str(&format!("{d} {}", if *d == 1 { "day" } else { "days" })),
            Literal::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        },
        ExprKind::Name(parts) => {
            let names: Vec<&str> = parts.iter().map(|p| p.node.as_str()).collect();
            out.push_str(&names.join("."));
        }
    }
}
