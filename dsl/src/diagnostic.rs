//! Diagnostics: one typed struct for every syntax error, check error and warning, with
//! a human renderer (`file:line:column`, the source line, a caret, a `help:` line) and a
//! JSON renderer.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::ast::Span;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file set cannot be used.
    Error,
    /// Legal but suspicious: the file set can be used.
    Warning,
}

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// A span of the diagnostic's file with an optional short message printed under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// The text pointed at.
    pub span: Span,
    /// What to say about it (may be empty).
    pub message: String,
}

/// One error or warning about one file.
///
/// The first label is the primary one: its position is the `file:line:column` of the
/// diagnostic. Other labels point at related text of the same file.
#[derive(Clone)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// A stable code such as `relance::check::unknown-channel`.
    pub code: &'static str,
    /// What is wrong, lowercase, user input in backticks.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
    /// The text pointed at; the first is primary. May be empty for file-level problems.
    pub labels: Vec<Label>,
    /// The file name as given in [`crate::Source::name`].
    pub file: String,
    /// The whole text of the file.
    pub source_text: Arc<str>,
    named: miette::NamedSource<Arc<str>>,
}

impl PartialEq for Diagnostic {
    fn eq(&self, other: &Self) -> bool {
        self.severity == other.severity
            && self.code == other.code
            && self.message == other.message
            && self.help == other.help
            && self.labels == other.labels
            && self.file == other.file
    }
}

impl Eq for Diagnostic {}

impl fmt::Debug for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Diagnostic")
            .field("severity", &self.severity)
            .field("code", &self.code)
            .field("message", &self.message)
            .field("help", &self.help)
            .field("labels", &self.labels)
            .field("file", &self.file)
            .finish()
    }
}

impl Diagnostic {
    /// A new error about `file`.
    pub fn error(code: &'static str, message: impl Into<String>, file: &str, text: &Arc<str>) -> Self {
        Self::new(Severity::Error, code, message, file, text)
    }

    /// A new warning about `file`.
    pub fn warning(code: &'static str, message: impl Into<String>, file: &str, text: &Arc<str>) -> Self {
        Self::new(Severity::Warning, code, message, file, text)
    }

    fn new(severity: Severity, code: &'static str, message: impl Into<String>, file: &str, text: &Arc<str>) -> Self {
        Self {
            severity,
            code,
            message: message.into(),
            help: None,
            labels: Vec::new(),
            file: file.to_string(),
            source_text: Arc::clone(text),
            named: miette::NamedSource::new(file, Arc::clone(text)),
        }
    }

    /// Adds a label (the first one added is the primary one).
    pub fn with_label(mut self, span: Span, message: impl Into<String>) -> Self {
        let span = clamp(span, &self.source_text);
        self.labels.push(Label { span, message: message.into() });
        self
    }

    /// Sets the help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The primary span, if any.
    pub fn primary_span(&self) -> Option<Span> {
        self.labels.first().map(|l| l.span)
    }

    /// 1-based `(line, column)` of the start of the primary span (`(1, 1)` without one).
    pub fn line_col(&self) -> (usize, usize) {
        let off = self.primary_span().map_or(0, |s| s.start);
        line_col(&self.source_text, off)
    }
}

/// Keeps a span inside the text and on character boundaries.
fn clamp(span: Span, text: &str) -> Span {
    let fix = |mut i: usize| {
        i = i.min(text.len());
        while i > 0 && !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let start = fix(span.start);
    let end = fix(span.end.max(start));
    Span::new(start, end.max(start))
}

/// 1-based line and column (in characters) of byte offset `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = text.get(line_start..offset).map_or(1, |s| s.chars().count() + 1);
    (line, col)
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display + 'a>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.named)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            return None;
        }
        Some(Box::new(self.labels.iter().enumerate().map(|(i, l)| {
            let text = (!l.message.is_empty()).then(|| l.message.clone());
            if i == 0 {
                miette::LabeledSpan::new_primary_with_span(text, l.span)
            } else {
                miette::LabeledSpan::new_with_span(text, l.span)
            }
        })))
    }
}

struct Style {
    on: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.on { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_string() }
    }
}

/// Renders diagnostics like a compiler, one after the other:
///
/// ```text
/// error[relance::check::unknown-channel]: unknown channel `leter`
///   --> policy.relance:12:9
///    |
/// 12 |   D+20  leter "reminder-2"
///    |         ^^^^^ not a channel
///    |
///    = help: did you mean `letter`?
/// ```
///
/// `color` adds ANSI colours (pass false when the output is not a terminal).
pub fn render_human(diags: &[Diagnostic], color: bool) -> String {
    let st = Style { on: color };
    let mut out = String::new();
    for d in diags {
        render_one(&mut out, d, &st);
        out.push('\n');
    }
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    if !diags.is_empty() {
        let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
        out.push_str(&format!("{}, {}\n", plural(errors, "error"), plural(warnings, "warning")));
    }
    out
}

fn render_one(out: &mut String, d: &Diagnostic, st: &Style) {
    let sev_color = match d.severity {
        Severity::Error => "1;31",
        Severity::Warning => "1;33",
    };
    out.push_str(&st.paint(sev_color, &format!("{}[{}]", d.severity.as_str(), d.code)));
    out.push_str(&st.paint("1", &format!(": {}", d.message)));
    out.push('\n');
    let text: &str = &d.source_text;
    let Some(primary) = d.labels.first() else {
        out.push_str(&format!("  {} {}\n", st.paint("1;34", "-->"), d.file));
        if let Some(h) = &d.help {
            out.push_str(&format!("  {} {h}\n", st.paint("1;36", "= help:")));
        }
        return;
    };
    let (line, col) = line_col(text, primary.span.start);
    // Lines shown: each label's first line, in order, without repeats.
    let mut shown: Vec<(usize, Vec<&Label>)> = Vec::new();
    for l in &d.labels {
        let (ln, _) = line_col(text, l.span.start);
        match shown.iter_mut().find(|(n, _)| *n == ln) {
            Some((_, v)) => v.push(l),
            None => shown.push((ln, vec![l])),
        }
    }
    shown.sort_by_key(|(n, _)| *n);
    let width = shown.iter().map(|(n, _)| n.to_string().len()).max().unwrap_or(1);
    let pad = " ".repeat(width);
    let gutter = |s: &str| st.paint("1;34", s);
    out.push_str(&format!("{pad}{} {}:{line}:{col}\n", gutter("-->"), d.file));
    out.push_str(&format!("{pad} {}\n", gutter("|")));
    let lines: Vec<&str> = text.split('\n').collect();
    let mut prev: Option<usize> = None;
    for (ln, labels) in &shown {
        if let Some(p) = prev
            && *ln > p + 1
        {
            out.push_str(&format!("{}\n", gutter("...")));
        }
        prev = Some(*ln);
        let src = lines.get(ln - 1).copied().unwrap_or("").trim_end_matches('\r');
        let src_disp = src.replace('\t', " ");
        out.push_str(&format!("{} {} {}\n", gutter(&format!("{ln:>width$}")), gutter("|"), src_disp));
        let line_start = line_start_offset(text, *ln);
        for l in labels {
            let is_primary = std::ptr::eq(*l, primary);
            let start_col = text.get(line_start..l.span.start).map_or(0, |s| s.chars().count());
            let line_end = line_start + src.len();
            let end = l.span.end.min(line_end).max(l.span.start);
            let n = text.get(l.span.start..end).map_or(1, |s| s.chars().count()).max(1);
            let mark = if is_primary { "^" } else { "-" };
            let color = if is_primary { sev_color } else { "1;34" };
            let mut marker = mark.repeat(n);
            if !l.message.is_empty() {
                marker.push(' ');
                marker.push_str(&l.message);
            }
            out.push_str(&format!("{pad} {} {}{}\n", gutter("|"), " ".repeat(start_col), st.paint(color, &marker)));
        }
    }
    if let Some(h) = &d.help {
        out.push_str(&format!("{pad} {}\n", gutter("|")));
        out.push_str(&format!("{pad} {} {h}\n", st.paint("1;36", "= help:")));
    }
}

fn line_start_offset(text: &str, line: usize) -> usize {
    if line <= 1 {
        return 0;
    }
    text.match_indices('\n').nth(line - 2).map_or(text.len(), |(i, _)| i + 1)
}

#[derive(Serialize)]
struct JsonDiag<'a> {
    file: &'a str,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    severity: Severity,
    code: &'a str,
    message: &'a str,
    help: Option<&'a str>,
}

/// Renders diagnostics as a JSON array of objects with `file`, `line`, `column`,
/// `end_line`, `end_column` (1-based, end exclusive), `severity`, `code`, `message` and
/// `help` (null when there is none).
pub fn render_json(diags: &[Diagnostic]) -> String {
    let items: Vec<JsonDiag<'_>> = diags
        .iter()
        .map(|d| {
            let span = d.primary_span().unwrap_or_default();
            let (line, column) = line_col(&d.source_text, span.start);
            let (end_line, end_column) = line_col(&d.source_text, span.end);
            JsonDiag {
                file: &d.file,
                line,
                column,
                end_line,
                end_column,
                severity: d.severity,
                code: d.code,
                message: &d.message,
                help: d.help.as_deref(),
            }
        })
        .collect();
    serde_json::to_string_pretty(&items).unwrap_or_else(|_| "[]".to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let t = "ab\néé x";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 3), (2, 1));
        assert_eq!(line_col(t, 8), (2, 4));
    }

    #[test]
    fn human_rendering_points_at_the_span() {
        let text: Arc<str> = Arc::from("line one\n  D+20 leter \"x\"\n");
        let d = Diagnostic::error("relance::check::unknown-channel", "unknown channel `leter`", "a.relance", &text)
            .with_label(Span::new(16, 21), "not a channel")
            .with_help("did you mean `letter`?");
        let out = render_human(&[d], false);
        assert_eq!(
            out,
            "error[relance::check::unknown-channel]: unknown channel `leter`\n \
             --> a.relance:2:8\n  |\n2 |   D+20 leter \"x\"\n  |        ^^^^^ not a channel\n  |\n  \
             = help: did you mean `letter`?\n\n1 error, 0 warnings\n"
        );
    }
}
