//! The pest parser and the builder from pest pairs to [`crate::ast`].
//!
//! Parsing is item by item: when a `settings` or `scenario` block has a syntax error, the
//! parser reports it and resumes at the next line that starts with `settings` or
//! `scenario`, so one run reports the syntax errors of every block.

use std::num::NonZeroUsize;
use std::str::FromStr;
use std::sync::Arc;

use pest::Parser as _;
use pest::iterators::Pair;
use rust_decimal::Decimal;

use crate::Source;
use crate::ast::*;
use crate::diagnostic::Diagnostic;
use crate::suggest::closest;

#[derive(pest_derive::Parser)]
#[grammar = "grammar.pest"]
struct Grammar;

/// Conditions nested deeper than this are refused (protects every recursive walk).
pub(crate) const MAX_DEPTH: usize = 64;
/// pest call budget for one top-level item.
const CALL_LIMIT: usize = 20_000_000;

pub(crate) mod codes {
    pub const SYNTAX: &str = "relance::syntax::unexpected";
    pub const OFFSET_SPACE: &str = "relance::syntax::offset-space";
    pub const OFFSET_NUMBER: &str = "relance::syntax::offset-missing-number";
    pub const UNTERMINATED: &str = "relance::syntax::unterminated-string";
    pub const ESCAPE: &str = "relance::syntax::invalid-escape";
    pub const NUMBER: &str = "relance::syntax::number-out-of-range";
    pub const TOO_DEEP: &str = "relance::syntax::too-deep";
    pub const DUP_OPTION: &str = "relance::syntax::duplicate-option";
    pub const LIMIT: &str = "relance::syntax::too-complex";
}

/// Parses one file; see [`crate::parse`].
pub(crate) fn parse(source: &Source) -> Result<File, Vec<Diagnostic>> {
    let text: Arc<str> = Arc::from(source.text.as_str());
    let comments = scan_comments(&source.text);
    let mut b = Builder {
        file: &source.name,
        text: &text,
        diags: Vec::new(),
        comment_ends: comments.iter().map(|c| (c.span.end, c.span.start)).collect(),
    };
    pest::set_call_limit(NonZeroUsize::new(CALL_LIMIT));
    if let Some(d) = b.check_nesting() {
        return Err(vec![d]);
    }
    let src = source.text.as_str();
    let mut items = Vec::new();
    let mut pos = 0usize;
    loop {
        pos = skip_trivia(src, pos);
        if pos >= src.len() {
            break;
        }
        let rest = &src[pos..];
        match Grammar::parse(Rule::item_at, rest) {
            Ok(mut pairs) => {
                let Some(item_at) = pairs.next() else { break };
                let end = item_at.as_span().end();
                for p in item_at.into_inner() {
                    match b.item(p, pos) {
                        Ok(Some(item)) => items.push(item),
                        Ok(None) => {}
                        Err(Bug) => b.diags.push(b.bug(pos + end)),
                    }
                }
                if end == 0 {
                    break;
                }
                pos += end;
            }
            Err(e) => {
                let (d, at) = b.syntax_error(&e, rest, pos);
                b.diags.push(d);
                match resync(src, at.max(pos + 1)) {
                    Some(next) => pos = next,
                    None => break,
                }
            }
        }
    }
    if b.diags.iter().any(Diagnostic::is_error) {
        return Err(b.diags);
    }
    Ok(File { items, comments })
}

/// Skips whitespace and comments from `pos`.
fn skip_trivia(src: &str, mut pos: usize) -> usize {
    let bytes = src.as_bytes();
    while pos < bytes.len() {
        match bytes[pos] {
            b' ' | b'\t' | b'\r' | b'\n' => pos += 1,
            b'#' => {
                while pos < bytes.len() && bytes[pos] != b'\n' {
                    pos += 1;
                }
            }
            _ => {
                if src[pos..].starts_with('\u{FEFF}') {
                    pos += '\u{FEFF}'.len_utf8();
                } else {
                    break;
                }
            }
        }
    }
    pos
}

/// The start of the first line at or after `from` whose first word is `settings` or
/// `scenario`.
fn resync(src: &str, from: usize) -> Option<usize> {
    let mut line_start = src.get(..from)?.rfind('\n').map_or(0, |i| i + 1);
    loop {
        let line_end = src[line_start..].find('\n').map_or(src.len(), |i| line_start + i);
        let line = &src[line_start..line_end];
        let trimmed = line.trim_start();
        let word_start = line_start + (line.len() - trimmed.len());
        let is_item = ["settings", "scenario"].iter().any(|k| {
            trimmed.starts_with(k)
                && !trimmed[k.len()..].chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        if is_item && word_start >= from {
            return Some(word_start);
        }
        if line_end >= src.len() {
            return None;
        }
        line_start = line_end + 1;
    }
}

/// Every `# comment` outside strings, in order. Strings end at their closing quote or at
/// the end of the line, as in the grammar.
pub(crate) fn scan_comments(src: &str) -> Vec<Comment> {
    let mut out = Vec::new();
    let bytes = src.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    if bytes[i] == b'\\' && i + 1 < bytes.len() && bytes[i + 1] != b'\n' {
                        i += 1;
                    }
                    i += 1;
                }
                if i < bytes.len() && bytes[i] == b'"' {
                    i += 1;
                }
            }
            b'#' => {
                let start = i;
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                let text = src[start..i].trim_end_matches('\r').to_string();
                let end = start + text.len();
                out.push(Comment { text, span: Span::new(start, end) });
            }
            _ => i += 1,
        }
    }
    out
}

/// An unexpected pair shape: a bug of the builder, never expected.
struct Bug;

type R<T> = Result<T, Bug>;

struct Builder<'a> {
    file: &'a str,
    text: &'a Arc<str>,
    diags: Vec<Diagnostic>,
    /// `(end, start)` of every comment, sorted by end.
    comment_ends: Vec<(usize, usize)>,
}

fn next<'i>(it: &mut pest::iterators::Pairs<'i, Rule>) -> R<Pair<'i, Rule>> {
    it.next().ok_or(Bug)
}

impl Builder<'_> {
    fn err(&self, code: &'static str, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::error(code, msg, self.file, self.text)
    }

    fn bug(&self, at: usize) -> Diagnostic {
        self.err(codes::SYNTAX, "the parser could not understand this block")
            .with_label(Span::new(at, at), "")
            .with_help("this is a bug of relance: please report it with the file")
    }

    /// Refuses inputs whose brackets nest deeper than [`MAX_DEPTH`].
    fn check_nesting(&self) -> Option<Diagnostic> {
        let bytes = self.text.as_bytes();
        let mut depth = 0usize;
        let mut i = 0;
        let mut in_str = false;
        while i < bytes.len() {
            let c = bytes[i];
            if in_str {
                if c == b'\\' {
                    i += 1;
                } else if c == b'"' || c == b'\n' {
                    in_str = false;
                }
            } else {
                match c {
                    b'"' => in_str = true,
                    b'#' => {
                        while i < bytes.len() && bytes[i] != b'\n' {
                            i += 1;
                        }
                    }
                    b'(' | b'[' => {
                        depth += 1;
                        if depth > MAX_DEPTH {
                            return Some(
                                self.err(codes::TOO_DEEP, "brackets are nested too deeply")
                                    .with_label(Span::new(i, i + 1), "too deep")
                                    .with_help(format!(
                                        "use at most {MAX_DEPTH} nested brackets, or move the logic into a rhai function"
                                    )),
                            );
                        }
                    }
                    b')' | b']' => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
            i += 1;
        }
        None
    }

    /// The span of a pair, without the whitespace and comments pest leaves at the end of
    /// a rule that ends with an optional or repeated part.
    fn span(&self, p: &Pair<'_, Rule>, base: usize) -> Span {
        let s = p.as_span();
        let start = base + s.start();
        let mut end = base + s.end();
        let bytes = self.text.as_bytes();
        loop {
            while end > start && matches!(bytes.get(end - 1), Some(b' ' | b'\t' | b'\r' | b'\n')) {
                end -= 1;
            }
            match self.comment_ends.binary_search_by_key(&end, |(e, _)| *e) {
                Ok(i) if self.comment_ends[i].1 >= start => end = self.comment_ends[i].1,
                _ => break,
            }
        }
        Span::new(start, end)
    }

    fn item(&mut self, p: Pair<'_, Rule>, base: usize) -> R<Option<Item>> {
        match p.as_rule() {
            Rule::settings => Ok(Some(Item::Settings(self.settings(p, base)?))),
            Rule::scenario => Ok(Some(Item::Scenario(self.scenario(p, base)?))),
            Rule::EOI => Ok(None),
            _ => Err(Bug),
        }
    }

    fn settings(&mut self, p: Pair<'_, Rule>, base: usize) -> R<Settings> {
        let span = self.span(&p, base);
        let mut entries = Vec::new();
        for s in p.into_inner() {
            if s.as_rule() != Rule::setting {
                continue;
            }
            let sspan = self.span(&s, base);
            let inner = next(&mut s.into_inner())?;
            let rule = inner.as_rule();
            let mut parts = inner.into_inner();
            let _kw = next(&mut parts)?;
            let kind = match rule {
                Rule::set_currency => SettingKind::Currency(self.ident(next(&mut parts)?, base)),
                Rule::set_calendar => SettingKind::Calendar(self.ident(next(&mut parts)?, base)),
                Rule::set_law => SettingKind::Law(self.ident(next(&mut parts)?, base)),
                Rule::set_language => SettingKind::Language(self.ident(next(&mut parts)?, base)),
                Rule::set_cooldown => {
                    let n = next(&mut parts)?;
                    let nspan = self.span(&n, base);
                    let v = match n.as_str().parse::<u32>() {
                        Ok(v) => v,
                        Err(_) => {
                            self.diags.push(
                                self.err(codes::NUMBER, format!("cooldown `{}` is too large", n.as_str()))
                                    .with_label(nspan, "too large")
                                    .with_help("write a number of days below 4294967296"),
                            );
                            0
                        }
                    };
                    SettingKind::Cooldown(Spanned::new(v, nspan))
                }
                Rule::set_minimum => {
                    let _balance = next(&mut parts)?;
                    SettingKind::MinimumBalance(self.money(next(&mut parts)?, base)?)
                }
                Rule::set_functions => SettingKind::Functions(self.string(next(&mut parts)?, base)?),
                Rule::set_catch_up => {
                    let _up = next(&mut parts)?;
                    SettingKind::CatchUp(self.catch_up_mode(next(&mut parts)?, base))
                }
                Rule::set_rates => SettingKind::RatesAssumeUnchanged,
                _ => return Err(Bug),
            };
            entries.push(Setting { kind, span: sspan });
        }
        Ok(Settings { entries, span })
    }

    fn catch_up_mode(&self, p: Pair<'_, Rule>, base: usize) -> Spanned<CatchUp> {
        let mode = if p.as_rule() == Rule::kw_stepwise { CatchUp::Stepwise } else { CatchUp::Latest };
        Spanned::new(mode, self.span(&p, base))
    }

    fn ident(&self, p: Pair<'_, Rule>, base: usize) -> Ident {
        Spanned::new(p.as_str().to_string(), self.span(&p, base))
    }

    fn string(&mut self, p: Pair<'_, Rule>, base: usize) -> R<StrLit> {
        let span = self.span(&p, base);
        let inner = next(&mut p.into_inner())?;
        match inner.as_rule() {
            Rule::string_ok => {
                let body = inner.into_inner().next().map_or("", |b| b.as_str());
                Ok(Spanned::new(unescape(body), span))
            }
            Rule::bad_string => {
                let raw = inner.as_str();
                if raw.len() >= 2 && raw.ends_with('"') {
                    // Closed, so the problem is an escape sequence.
                    let at = raw
                        .char_indices()
                        .find_map(|(i, c)| {
                            (c == '\\' && !matches!(raw[i + 1..].chars().next(), Some('"' | '\\' | 'n' | 't')))
                                .then_some(i)
                        })
                        .unwrap_or(0);
                    let esc_len = raw[at..].chars().take(2).map(char::len_utf8).sum::<usize>();
                    self.diags.push(
                        self.err(codes::ESCAPE, "invalid escape sequence in string")
                            .with_label(Span::new(span.start + at, span.start + at + esc_len), "not a known escape")
                            .with_help("use `\\\"`, `\\\\`, `\\n` or `\\t`, or write `\\\\` for a backslash"),
                    );
                } else {
                    self.diags.push(
                        self.err(codes::UNTERMINATED, "unterminated string")
                            .with_label(span, "this string has no closing `\"`")
                            .with_help("add a `\"` at the end of the string (strings cannot span lines)"),
                    );
                }
                Ok(Spanned::new(String::new(), span))
            }
            _ => Err(Bug),
        }
    }

    fn decimal(&mut self, p: &Pair<'_, Rule>, base: usize) -> Decimal {
        match Decimal::from_str(p.as_str()) {
            Ok(d) => d,
            Err(_) => {
                let span = self.span(p, base);
                self.diags.push(
                    self.err(codes::NUMBER, format!("number `{}` is out of range", p.as_str()))
                        .with_label(span, "cannot be represented")
                        .with_help("write a number with at most 28 significant digits"),
                );
                Decimal::ZERO
            }
        }
    }

    fn money(&mut self, p: Pair<'_, Rule>, base: usize) -> R<Money> {
        let span = self.span(&p, base);
        let mut it = p.into_inner();
        let n = next(&mut it)?;
        let amount = self.decimal(&n, base);
        let currency = self.ident(next(&mut it)?, base);
        Ok(Money { amount, currency, span })
    }

    fn scenario(&mut self, p: Pair<'_, Rule>, base: usize) -> R<Scenario> {
        let span = self.span(&p, base);
        let mut it = p.into_inner();
        let _kw = next(&mut it)?;
        let name = self.string(next(&mut it)?, base)?;
        let sel = next(&mut it)?;
        let selector = self.selector(sel, base)?;
        let mut entries = Vec::new();
        for e in it {
            let espan = self.span(&e, base);
            let entry = match e.as_rule() {
                Rule::step => {
                    let mut parts = e.into_inner();
                    let offset = self.offset(next(&mut parts)?, base)?;
                    let action = self.action(next(&mut parts)?, base)?;
                    ScenarioEntry::Step(Step { offset, action, span: espan })
                }
                Rule::event => {
                    let mut parts = e.into_inner();
                    let k = next(&mut parts)?;
                    let kind = match k.as_rule() {
                        Rule::after_payment => EventKind::AfterPayment,
                        Rule::broken_promise => EventKind::BrokenPromise,
                        _ => return Err(Bug),
                    };
                    let kspan = self.span(&k, base);
                    let action = self.action(next(&mut parts)?, base)?;
                    ScenarioEntry::Event(Event { kind: Spanned::new(kind, kspan), action, span: espan })
                }
                Rule::pause | Rule::stop => {
                    let is_pause = e.as_rule() == Rule::pause;
                    let cond = e.into_inner().find(|x| x.as_rule() == Rule::expr).ok_or(Bug)?;
                    let rule = Rule_ { condition: self.expr(cond, base)?, span: espan };
                    if is_pause { ScenarioEntry::Pause(rule) } else { ScenarioEntry::Stop(rule) }
                }
                Rule::count_business => ScenarioEntry::CountBusinessDays(espan),
                Rule::catch_up => {
                    let mode = e.into_inner().last().ok_or(Bug)?;
                    ScenarioEntry::CatchUp(Spanned::new(self.catch_up_mode(mode, base).node, espan))
                }
                _ => continue,
            };
            entries.push(entry);
        }
        Ok(Scenario { name, selector, entries, span })
    }

    fn selector(&mut self, p: Pair<'_, Rule>, base: usize) -> R<Selector> {
        let span = self.span(&p, base);
        let mut it = p.into_inner();
        let _for = next(&mut it)?;
        let k = next(&mut it)?;
        let kind = match k.as_rule() {
            Rule::sel_segments => {
                let mut names = Vec::new();
                for s in k.into_inner() {
                    if s.as_rule() == Rule::string {
                        names.push(self.string(s, base)?);
                    }
                }
                SelectorKind::Segments(names)
            }
            Rule::sel_where => {
                let e = k.into_inner().find(|x| x.as_rule() == Rule::expr).ok_or(Bug)?;
                SelectorKind::Where(self.expr(e, base)?)
            }
            Rule::sel_others => SelectorKind::Others,
            _ => return Err(Bug),
        };
        Ok(Selector { kind, span })
    }

    fn offset(&mut self, p: Pair<'_, Rule>, base: usize) -> R<Spanned<i32>> {
        let span = self.span(&p, base);
        let inner = next(&mut p.into_inner())?;
        let raw = inner.as_str();
        let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
        let negative = raw.contains('-');
        let parse = |b: &mut Self| -> i32 {
            if digits.is_empty() {
                return 0;
            }
            match digits.parse::<i32>() {
                Ok(v) if v <= 100_000 => {
                    if negative {
                        -v
                    } else {
                        v
                    }
                }
                _ => {
                    b.diags.push(
                        b.err(codes::NUMBER, format!("offset `{raw}` is out of range"))
                            .with_label(span, "too far from the due date")
                            .with_help("write an offset between `D-100000` and `D+100000`"),
                    );
                    0
                }
            }
        };
        let value = match inner.as_rule() {
            Rule::offset_ok => parse(self),
            Rule::bad_offset_space => {
                let sign = if negative { "-" } else { "+" };
                self.diags.push(
                    self.err(codes::OFFSET_SPACE, format!("step offset `{raw}` contains a space"))
                        .with_label(span, "no space allowed here")
                        .with_help(format!("write `D{sign}{digits}`, without spaces")),
                );
                parse(self)
            }
            Rule::bad_offset_missing => {
                self.diags.push(
                    self.err(codes::OFFSET_NUMBER, format!("step offset `{raw}` has no number of days"))
                        .with_label(span, "a number of days must follow")
                        .with_help(format!(
                            "write the number of days right after the sign, as `{raw}3`, or `D` for the due date itself"
                        )),
                );
                0
            }
            _ => return Err(Bug),
        };
        Ok(Spanned::new(value, span))
    }

    fn action(&mut self, p: Pair<'_, Rule>, base: usize) -> R<ActionSpec> {
        let mut it = p.into_inner();
        let channel = self.ident(next(&mut it)?, base);
        let template = self.string(next(&mut it)?, base)?;
        let mut a =
            ActionSpec { channel, template, assign: None, per_invoice: None, condition: None, charges: Vec::new() };
        for o in it {
            let ospan = self.span(&o, base);
            match o.as_rule() {
                Rule::assign => {
                    let s = o.into_inner().find(|x| x.as_rule() == Rule::string).ok_or(Bug)?;
                    let s = self.string(s, base)?;
                    if a.assign.is_some() {
                        self.dup_option("assign", ospan);
                    } else {
                        a.assign = Some(s);
                    }
                }
                Rule::per_invoice => {
                    if a.per_invoice.is_some() {
                        self.dup_option("per invoice", ospan);
                    } else {
                        a.per_invoice = Some(ospan);
                    }
                }
                Rule::when_clause => {
                    let e = o.into_inner().find(|x| x.as_rule() == Rule::expr).ok_or(Bug)?;
                    let e = self.expr(e, base)?;
                    if a.condition.is_some() {
                        self.diags.push(
                            self.err(codes::DUP_OPTION, "a step has at most one `when` condition")
                                .with_label(ospan, "second `when`")
                                .with_help("combine the conditions with `and`: `when A and B`"),
                        );
                    } else {
                        a.condition = Some(e);
                    }
                }
                Rule::charge => a.charges.push(self.charge(o, base)?),
                _ => return Err(Bug),
            }
        }
        Ok(a)
    }

    fn dup_option(&mut self, what: &str, span: Span) {
        self.diags.push(
            self.err(codes::DUP_OPTION, format!("`{what}` is written twice in one step"))
                .with_label(span, "repeated here")
                .with_help(format!("keep a single `{what}`")),
        );
    }

    fn charge(&mut self, p: Pair<'_, Rule>, base: usize) -> R<Charge> {
        let span = self.span(&p, base);
        let mut it = p.into_inner();
        let _with = next(&mut it)?;
        let what = next(&mut it)?;
        let is_fee = what.as_rule() == Rule::fee;
        let mut parts = what.into_inner();
        let _kw = next(&mut parts)?;
        let arg = next(&mut parts)?;
        let kind = match (is_fee, arg.as_rule()) {
            (true, Rule::kw_legal) => ChargeKind::FeeLegal,
            (false, Rule::kw_legal) => ChargeKind::InterestLegal,
            (true, Rule::fee_amount) => {
                let m = next(&mut arg.into_inner())?;
                ChargeKind::FeeAmount(self.money(m, base)?)
            }
            (false, Rule::interest_fixed) => {
                let n = next(&mut arg.into_inner())?;
                let v = self.decimal(&n, base);
                ChargeKind::InterestFixed(Spanned::new(v, self.span(&n, base)))
            }
            (false, Rule::interest_ref) => {
                let mut r = arg.into_inner();
                let reference = self.ident(next(&mut r)?, base);
                let sign = next(&mut r)?;
                let n = next(&mut r)?;
                let mut v = self.decimal(&n, base);
                if sign.as_str() == "-" {
                    v = -v;
                }
                let pspan = self.span(&sign, base).join(self.span(&n, base));
                ChargeKind::InterestReference { reference, points: Spanned::new(v, pspan) }
            }
            _ => return Err(Bug),
        };
        Ok(Charge { kind, span })
    }

    fn too_deep(&mut self, span: Span) -> Bug {
        self.diags.push(
            self.err(codes::TOO_DEEP, "this condition is too complex")
                .with_label(span, "too many nested operators")
                .with_help(format!(
                    "split it (at most {MAX_DEPTH} levels of `and`, `or`, `not` and brackets) or move it into a rhai function"
                )),
        );
        Bug
    }

    fn expr(&mut self, p: Pair<'_, Rule>, base: usize) -> R<Expr> {
        let (e, _) = self.expr_d(p, base, 0).or_else(|b| {
            // A depth error was already reported: keep building the file.
            if self.diags.iter().any(|d| d.code == codes::TOO_DEEP) {
                Ok((Expr { kind: ExprKind::Literal(Literal::Bool(true)), span: Span::default() }, 0))
            } else {
                Err(b)
            }
        })?;
        Ok(e)
    }

    /// Builds an expression and returns it with its depth.
    fn expr_d(&mut self, p: Pair<'_, Rule>, base: usize, depth: usize) -> R<(Expr, usize)> {
        let span = self.span(&p, base);
        if depth > MAX_DEPTH {
            return Err(self.too_deep(span));
        }
        match p.as_rule() {
            Rule::expr | Rule::and_expr => {
                let is_or = p.as_rule() == Rule::expr;
                let mut it = p.into_inner().filter(|x| !matches!(x.as_rule(), Rule::kw_or | Rule::kw_and));
                let (mut acc, mut d) = self.expr_d(next_f(&mut it)?, base, depth + 1)?;
                for rhs in it {
                    let (r, rd) = self.expr_d(rhs, base, depth + 1)?;
                    d = d.max(rd) + 1;
                    if d > MAX_DEPTH {
                        return Err(self.too_deep(span));
                    }
                    let s = acc.span.join(r.span);
                    let kind = if is_or {
                        ExprKind::Or(Box::new(acc), Box::new(r))
                    } else {
                        ExprKind::And(Box::new(acc), Box::new(r))
                    };
                    acc = Expr { kind, span: s };
                }
                Ok((acc, d))
            }
            Rule::cmp_expr => {
                let mut it = p.into_inner();
                let (lhs, ld) = self.expr_d(next(&mut it)?, base, depth + 1)?;
                let Some(op) = it.next() else {
                    return Ok((lhs, ld));
                };
                match op.as_rule() {
                    Rule::cmp_op => {
                        let ospan = self.span(&op, base);
                        let o = match op.as_str() {
                            "=" => CompareOp::Eq,
                            "!=" => CompareOp::Ne,
                            "<" => CompareOp::Lt,
                            "<=" => CompareOp::Le,
                            ">" => CompareOp::Gt,
                            ">=" => CompareOp::Ge,
                            _ => return Err(Bug),
                        };
                        let (rhs, rd) = self.expr_d(next(&mut it)?, base, depth + 1)?;
                        Ok((
                            Expr {
                                kind: ExprKind::Compare {
                                    lhs: Box::new(lhs),
                                    op: Spanned::new(o, ospan),
                                    rhs: Box::new(rhs),
                                },
                                span,
                            },
                            ld.max(rd) + 1,
                        ))
                    }
                    Rule::kw_has => {
                        let (rhs, rd) = self.expr_d(next(&mut it)?, base, depth + 1)?;
                        Ok((
                            Expr { kind: ExprKind::Has { lhs: Box::new(lhs), rhs: Box::new(rhs) }, span },
                            ld.max(rd) + 1,
                        ))
                    }
                    Rule::kw_in => {
                        let l = next(&mut it)?;
                        let mut list = Vec::new();
                        let mut d = ld;
                        for x in l.into_inner() {
                            let (e, xd) = self.expr_d(x, base, depth + 1)?;
                            d = d.max(xd);
                            list.push(e);
                        }
                        Ok((Expr { kind: ExprKind::In { lhs: Box::new(lhs), list }, span }, d + 1))
                    }
                    _ => Err(Bug),
                }
            }
            Rule::unary => {
                let mut nots = Vec::new();
                let mut primary = None;
                for x in p.into_inner() {
                    if x.as_rule() == Rule::kw_not {
                        nots.push(self.span(&x, base));
                    } else {
                        primary = Some(x);
                    }
                }
                if nots.len() > MAX_DEPTH {
                    return Err(self.too_deep(span));
                }
                let (mut e, mut d) = self.expr_d(primary.ok_or(Bug)?, base, depth + 1 + nots.len())?;
                for n in nots.into_iter().rev() {
                    let s = n.join(e.span);
                    e = Expr { kind: ExprKind::Not(Box::new(e)), span: s };
                    d += 1;
                }
                Ok((e, d))
            }
            Rule::paren => {
                let inner = next(&mut p.into_inner())?;
                let (e, d) = self.expr_d(inner, base, depth + 1)?;
                Ok((Expr { kind: ExprKind::Paren(Box::new(e)), span }, d + 1))
            }
            Rule::rhai => {
                let s = p.into_inner().find(|x| x.as_rule() == Rule::string).ok_or(Bug)?;
                let s = self.string(s, base)?;
                Ok((Expr { kind: ExprKind::Rhai(s), span }, 1))
            }
            Rule::duration => {
                let n = next(&mut p.into_inner())?;
                let v = match n.as_str().parse::<i64>() {
                    Ok(v) => v,
                    Err(_) => {
                        let ns = self.span(&n, base);
                        self.diags.push(
                            self.err(codes::NUMBER, format!("duration `{}` is out of range", n.as_str()))
                                .with_label(ns, "too large")
                                .with_help("write a smaller number of days"),
                        );
                        0
                    }
                };
                Ok((lit(Literal::Days(v), span), 1))
            }
            Rule::money => {
                let m = self.money(p, base)?;
                Ok((lit(Literal::Money(m), span), 1))
            }
            Rule::signed_number => {
                let v = self.decimal(&p, base);
                Ok((lit(Literal::Number(v), span), 1))
            }
            Rule::string => {
                let s = self.string(p, base)?;
                Ok((lit(Literal::String(s.node), span), 1))
            }
            Rule::kw_true => Ok((lit(Literal::Bool(true), span), 1)),
            Rule::kw_false => Ok((lit(Literal::Bool(false), span), 1)),
            Rule::name => {
                let parts: Vec<Ident> = p.into_inner().map(|x| self.ident(x, base)).collect();
                Ok((Expr { kind: ExprKind::Name(parts), span }, 1))
            }
            _ => Err(Bug),
        }
    }

    /// The end of the last token before `at` (skipping whitespace and comments).
    fn prev_token_end(&self, at: usize) -> usize {
        let bytes = self.text.as_bytes();
        let mut end = at.min(bytes.len());
        loop {
            while end > 0 && matches!(bytes[end - 1], b' ' | b'\t' | b'\r' | b'\n') {
                end -= 1;
            }
            match self.comment_ends.binary_search_by_key(&end, |(e, _)| *e) {
                Ok(i) => end = self.comment_ends[i].1,
                Err(_) => return end,
            }
        }
    }

    /// Turns a pest error into a diagnostic; also returns the absolute error offset.
    fn syntax_error(&self, e: &pest::error::Error<Rule>, rest: &str, base: usize) -> (Diagnostic, usize) {
        use pest::error::{ErrorVariant, InputLocation};
        let pos = match e.location {
            InputLocation::Pos(p) => p,
            InputLocation::Span((s, _)) => s,
        };
        let (positives, message_override) = match &e.variant {
            ErrorVariant::ParsingError { positives, .. } => (positives.clone(), None),
            ErrorVariant::CustomError { message } => (Vec::new(), Some(message.clone())),
        };
        if let Some(m) = message_override {
            let at = base + pos;
            let d = self
                .err(codes::LIMIT, format!("this block is too complex to parse ({m})"))
                .with_label(Span::new(at, at), "")
                .with_help("split the scenario into smaller ones");
            return (d, at);
        }
        // Literal punctuation the parser expected (pest only lists rules in `positives`).
        let mut tokens: Vec<String> = Vec::new();
        pest::set_error_detail(true);
        if let Err(e2) = Grammar::parse(Rule::item_at, rest)
            && let Some(att) = e2.parse_attempts()
            && att.max_position == pos
        {
            for t in att.expected_tokens() {
                let s = t.to_string();
                if !s.is_empty() && ["{", "}", ")", "]", ",", "%"].contains(&s.as_str()) && !tokens.contains(&s) {
                    tokens.push(s);
                }
            }
        }
        pest::set_error_detail(false);
        let found = Found::at(rest, pos);
        let at = base + pos;
        let expected = expectations(&positives, &tokens);
        let mut msg = if expected.is_empty() {
            format!("unexpected {}", found.describe())
        } else {
            format!("expected {}, found {}", join_or(&expected), found.describe())
        };
        if positives.is_empty() && tokens.is_empty() {
            msg = format!("unexpected {}", found.describe());
        }
        let help = help_for(&positives, &tokens, &found);
        let span = Span::new(at, at + found.len);
        let prev = self.prev_token_end(at);
        let mut d = self.err(codes::SYNTAX, msg);
        if prev < at && self.text.get(prev..at).is_some_and(|s| s.contains('\n')) {
            // The missing text belongs at the end of the previous line.
            d = d.with_label(Span::new(prev, prev), "expected more here");
            if !matches!(found.kind, FoundKind::Eof) {
                d = d.with_label(span, "found this");
            }
        } else {
            d = d.with_label(span, "unexpected here");
        }
        if let Some(h) = help {
            d = d.with_help(h);
        }
        (d, at)
    }
}

fn next_f<'i>(it: &mut impl Iterator<Item = Pair<'i, Rule>>) -> R<Pair<'i, Rule>> {
    it.next().ok_or(Bug)
}

type Rule_ = crate::ast::Rule;

fn lit(l: Literal, span: Span) -> Expr {
    Expr { kind: ExprKind::Literal(l), span }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(o) => out.push(o),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[derive(Debug)]
enum FoundKind {
    Word(String),
    Number(String),
    Str,
    Punct(String),
    Eof,
}

struct Found {
    kind: FoundKind,
    len: usize,
    /// The character just before is `=` (as in `==`).
    after_eq: bool,
}

impl Found {
    fn at(rest: &str, pos: usize) -> Found {
        let mut f = Self::token(rest, pos);
        f.after_eq = rest.get(..pos).is_some_and(|b| b.ends_with('='));
        f
    }

    fn token(rest: &str, pos: usize) -> Found {
        let s = rest.get(pos..).unwrap_or("");
        let Some(c) = s.chars().next() else {
            return Found { kind: FoundKind::Eof, len: 0, after_eq: false };
        };
        let take =
            |f: &dyn Fn(char) -> bool| -> usize { s.char_indices().find(|(_, c)| !f(*c)).map_or(s.len(), |(i, _)| i) };
        if c.is_alphabetic() || c == '_' {
            let n = take(&|c| c.is_alphanumeric() || c == '_');
            Found { kind: FoundKind::Word(s[..n].to_string()), len: n, after_eq: false }
        } else if c.is_ascii_digit() {
            let n = take(&|c| c.is_ascii_digit() || c == '.');
            Found { kind: FoundKind::Number(s[..n].to_string()), len: n, after_eq: false }
        } else if c == '"' {
            Found { kind: FoundKind::Str, len: 1, after_eq: false }
        } else {
            let n = take(&|c| "=!<>&|".contains(c)).max(c.len_utf8());
            let n = if "=!<>&|".contains(c) { n } else { c.len_utf8() };
            Found { kind: FoundKind::Punct(s[..n].to_string()), len: n, after_eq: false }
        }
    }

    fn describe(&self) -> String {
        match &self.kind {
            FoundKind::Word(w) => format!("`{w}`"),
            FoundKind::Number(n) => format!("`{n}`"),
            FoundKind::Str => "a string".to_string(),
            FoundKind::Punct(p) if p == "\r" => "end of line".to_string(),
            FoundKind::Punct(p) => format!("`{}`", p.escape_debug()),
            FoundKind::Eof => "end of file".to_string(),
        }
    }
}

/// The keyword a `kw_*` rule matches, if it is one.
fn keyword(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::kw_settings => "settings",
        Rule::kw_scenario => "scenario",
        Rule::kw_currency | Rule::set_currency => "currency",
        Rule::kw_calendar | Rule::set_calendar => "calendar",
        Rule::kw_law | Rule::set_law => "law",
        Rule::kw_cooldown | Rule::set_cooldown => "cooldown",
        Rule::kw_minimum | Rule::set_minimum => "minimum",
        Rule::kw_balance => "balance",
        Rule::kw_language | Rule::set_language => "language",
        Rule::kw_functions | Rule::set_functions => "functions",
        Rule::kw_rates | Rule::set_rates => "rates",
        Rule::kw_assume => "assume",
        Rule::kw_unchanged => "unchanged",
        Rule::kw_catch | Rule::set_catch_up | Rule::catch_up => "catch",
        Rule::kw_up => "up",
        Rule::kw_latest => "latest",
        Rule::kw_stepwise => "stepwise",
        Rule::kw_for | Rule::selector => "for",
        Rule::kw_segment | Rule::sel_segments => "segment",
        Rule::kw_customers | Rule::sel_where => "customers",
        Rule::kw_where => "where",
        Rule::kw_others | Rule::sel_others => "others",
        Rule::kw_assign | Rule::assign => "assign",
        Rule::kw_per | Rule::per_invoice => "per",
        Rule::kw_invoice => "invoice",
        Rule::kw_when | Rule::when_clause => "when",
        Rule::kw_with | Rule::charge => "with",
        Rule::kw_fee | Rule::fee => "fee",
        Rule::kw_interest | Rule::interest => "interest",
        Rule::kw_legal => "legal",
        Rule::kw_year => "year",
        Rule::kw_points => "points",
        Rule::kw_days => "days",
        Rule::kw_after | Rule::after_payment => "after",
        Rule::kw_payment => "payment",
        Rule::kw_on | Rule::broken_promise => "on",
        Rule::kw_broken => "broken",
        Rule::kw_promise => "promise",
        Rule::kw_pause | Rule::pause => "pause",
        Rule::kw_stop | Rule::stop => "stop",
        Rule::kw_count | Rule::count_business => "count",
        Rule::kw_business => "business",
        Rule::kw_and => "and",
        Rule::kw_or => "or",
        Rule::kw_not => "not",
        Rule::kw_has => "has",
        Rule::kw_in => "in",
        Rule::kw_true => "true",
        Rule::kw_false => "false",
        Rule::kw_rhai | Rule::rhai => "rhai",
        _ => return None,
    })
}

/// A human name for a rule, as used in "expected …".
fn human(rule: Rule) -> String {
    let s = match rule {
        Rule::file | Rule::item_at | Rule::rest => "`settings` or `scenario`",
        Rule::settings => "`settings`",
        Rule::scenario => "`scenario`",
        Rule::EOI => "end of file",
        Rule::ident | Rule::code => "a name",
        Rule::string | Rule::string_ok | Rule::bad_string | Rule::string_body => {
            "a quoted string such as `\"reminder-1\"`"
        }
        Rule::number | Rule::signed_number | Rule::integer => "a number",
        Rule::money | Rule::fee_amount => "an amount such as `40 EUR`",
        Rule::currency_code => "a currency code such as `EUR`",
        Rule::duration => "a duration such as `30 days`",
        Rule::setting => "a setting such as `currency EUR`",
        Rule::selector => "a selector: `for segment \"…\"`, `for customers where …` or `for others`",
        Rule::step => "a step such as `D+3 email \"reminder-1\"`",
        Rule::offset | Rule::offset_ok | Rule::bad_offset_space | Rule::bad_offset_missing => {
            "a step offset such as `D+3`"
        }
        Rule::event => "an event (`after payment` or `on broken promise`)",
        Rule::pause => "`pause when …`",
        Rule::stop => "`stop when …`",
        Rule::count_business => "`count business days`",
        Rule::catch_up | Rule::set_catch_up => "`catch up latest` or `catch up stepwise`",
        Rule::set_rates => "`rates assume unchanged`",
        Rule::set_minimum => "`minimum balance`",
        Rule::per_invoice => "`per invoice`",
        Rule::action | Rule::channel => "a channel such as `email` or `letter`",
        Rule::interest_fixed => "a rate such as `8% per year`",
        Rule::interest_ref => "a reference rate such as `ECB + 10 points`",
        Rule::margin_sign => "`+` or `-`",
        Rule::expr | Rule::and_expr | Rule::cmp_expr | Rule::unary => "a condition",
        Rule::cmp_op => "a comparison (`=`, `!=`, `<`, `<=`, `>`, `>=`)",
        Rule::paren => "`(`",
        Rule::list => "a list such as `[\"a\", \"b\"]`",
        Rule::name => "a name such as `balance`",
        Rule::after_payment => "`after payment`",
        Rule::broken_promise => "`on broken promise`",
        r => {
            return keyword(r).map_or_else(|| "more text".to_string(), |k| format!("`{k}`"));
        }
    };
    s.to_string()
}

fn expectations(positives: &[Rule], tokens: &[String]) -> Vec<String> {
    let mut rules: Vec<Rule> = positives.to_vec();
    rules.sort();
    rules.dedup();
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    let any = |rules: &[Rule], g: &[Rule]| g.iter().any(|r| rules.contains(r));
    // After `with fee` / `with interest`.
    if rules.contains(&Rule::kw_legal) {
        if any(&rules, &[Rule::ident, Rule::interest_ref, Rule::interest_fixed]) {
            push("`legal`, a rate such as `8% per year` or a reference rate such as `ECB + 10 points`".to_string());
        } else {
            push("`legal` or an amount such as `40 EUR`".to_string());
        }
        rules.retain(|r| {
            !matches!(
                r,
                Rule::kw_legal
                    | Rule::ident
                    | Rule::interest_ref
                    | Rule::interest_fixed
                    | Rule::fee_amount
                    | Rule::money
                    | Rule::number
                    | Rule::signed_number
            )
        });
    }
    let opt_group = [
        Rule::assign,
        Rule::per_invoice,
        Rule::when_clause,
        Rule::charge,
        Rule::kw_assign,
        Rule::kw_per,
        Rule::kw_when,
        Rule::kw_with,
    ];
    if opt_group.iter().filter(|r| rules.contains(r)).count() >= 3 {
        push("an option (`assign`, `per invoice`, `when`, `with`)".to_string());
        rules.retain(|r| !opt_group.contains(r));
    }
    let entry_group = [
        Rule::step,
        Rule::offset,
        Rule::offset_ok,
        Rule::bad_offset_space,
        Rule::bad_offset_missing,
        Rule::event,
        Rule::after_payment,
        Rule::broken_promise,
        Rule::kw_after,
        Rule::kw_on,
        Rule::pause,
        Rule::kw_pause,
        Rule::stop,
        Rule::kw_stop,
        Rule::count_business,
        Rule::kw_count,
        Rule::catch_up,
        Rule::kw_catch,
    ];
    if entry_group.iter().filter(|r| rules.contains(r)).count() >= 3 {
        push("a step such as `D+3 email \"reminder-1\"`, an event, a `pause`/`stop` rule".to_string());
        rules.retain(|r| !entry_group.contains(r));
    }
    if rules.contains(&Rule::setting) {
        rules.retain(|r| keyword(*r).is_none() || *r == Rule::setting);
    }
    if rules == [Rule::kw_for] {
        rules = vec![Rule::selector];
    }
    let expr_like = any(&rules, &[Rule::expr, Rule::and_expr, Rule::cmp_expr, Rule::unary]);
    for r in rules {
        if expr_like && matches!(r, Rule::paren | Rule::signed_number | Rule::number | Rule::name | Rule::kw_not) {
            continue;
        }
        push(human(r));
    }
    for t in tokens {
        push(format!("`{t}`"));
    }
    out
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Every keyword a rule set can start with, for "did you mean" on a misspelt word.
fn expected_keywords(positives: &[Rule]) -> Vec<&'static str> {
    let mut out = Vec::new();
    for r in positives {
        let extra: &[&str] = match r {
            Rule::file | Rule::item_at | Rule::rest => &["settings", "scenario"],
            Rule::settings => &["settings"],
            Rule::scenario => &["scenario"],
            Rule::setting => {
                &["currency", "calendar", "law", "cooldown", "minimum", "language", "functions", "catch", "rates"]
            }
            Rule::selector => &["for"],
            Rule::event => &["after", "on"],
            Rule::sel_segments | Rule::sel_where | Rule::sel_others => &[],
            _ => &[],
        };
        out.extend_from_slice(extra);
        if let Some(k) = keyword(*r) {
            out.push(k);
        }
        if matches!(r, Rule::fee | Rule::interest) {
            out.push("legal");
        }
    }
    if positives.contains(&Rule::selector) {
        out.extend_from_slice(&["segment", "customers", "others"]);
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn help_for(positives: &[Rule], tokens: &[String], found: &Found) -> Option<String> {
    let has = |r: Rule| positives.contains(&r);
    let tok = |t: &str| tokens.iter().any(|x| x == t);
    if let FoundKind::Word(w) = &found.kind {
        if (w == "scenario" || w == "settings") && tok("}") {
            return Some("add a `}` to close the block above before starting a new one".to_string());
        }
        let kws = expected_keywords(positives);
        if let Some(k) = closest(w, kws.iter().copied())
            && k != w
        {
            return Some(format!("did you mean `{k}`?"));
        }
        if has(Rule::string) {
            return Some(format!("put the text in double quotes: `\"{w}\"`"));
        }
        if has(Rule::selector) || positives == [Rule::kw_for] {
            return Some(
                "start the scenario with a selector: `for segment \"sme\"`, `for customers where …` or `for others`"
                    .to_string(),
            );
        }
        if has(Rule::currency_code) {
            return Some("write the amount as a number followed by a currency code, e.g. `40 EUR`".to_string());
        }
    }
    if found.after_eq && matches!(&found.kind, FoundKind::Punct(p) if p.starts_with('=')) {
        return Some("compare with a single `=`".to_string());
    }
    if let FoundKind::Punct(p) = &found.kind {
        match p.as_str() {
            "==" => return Some("compare with a single `=`".to_string()),
            "&&" => return Some("write `and` instead of `&&`".to_string()),
            "||" => return Some("write `or` instead of `||`".to_string()),
            "!" => return Some("write `not` instead of `!`".to_string()),
            "€" | "$" | "£" => {
                return Some("write the currency code after the amount, e.g. `40 EUR`".to_string());
            }
            _ => {}
        }
    }
    if let FoundKind::Number(n) = &found.kind
        && (has(Rule::offset) || has(Rule::step))
    {
        return Some(format!("an offset starts with `D`: write `D+{n}`"));
    }
    if matches!(found.kind, FoundKind::Eof) && tok("}") {
        return Some("add the missing `}` to close the block".to_string());
    }
    if has(Rule::currency_code) {
        return Some("add a currency code after the amount, e.g. `40 EUR`".to_string());
    }
    if has(Rule::interest_fixed) || has(Rule::interest_ref) || (has(Rule::kw_legal) && has(Rule::ident)) {
        return Some(
            "write `with interest legal`, `with interest 8% per year` or `with interest ECB + 10 points`".to_string(),
        );
    }
    if has(Rule::kw_legal) || has(Rule::fee_amount) {
        return Some("write `with fee legal` or an amount such as `with fee 40 EUR`".to_string());
    }
    if has(Rule::margin_sign) {
        return Some("write the margin over the reference rate, e.g. `ECB + 10 points`".to_string());
    }
    if has(Rule::selector) {
        return Some(
            "start the scenario with a selector: `for segment \"sme\"`, `for customers where …` or `for others`"
                .to_string(),
        );
    }
    if has(Rule::string) {
        return Some("write the text in double quotes, e.g. `\"reminder-1\"`".to_string());
    }
    if has(Rule::channel) || has(Rule::action) {
        return Some("after the offset, write a channel and a template: `D+3 email \"reminder-1\"`".to_string());
    }
    if has(Rule::expr) || has(Rule::unary) || has(Rule::cmp_expr) {
        return Some("write a condition such as `balance >= 500 EUR` or `disputed`".to_string());
    }
    if tok("{") {
        return Some("open the block with `{`".to_string());
    }
    if tok("}") {
        return Some("check for a missing `}` or a misspelt line in this block".to_string());
    }
    None
}
