//! Script errors: rhai's errors turned into messages for people who write scenarios.

use std::fmt;

use rhai::{Dynamic, EvalAltResult, ParseError, ParseErrorType, Position};

use super::ScriptLimits;
use super::view::{CustomerView, InvoiceView, ScriptDate};

/// What went wrong in a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptErrorKind {
    /// The script does not compile (syntax, unknown variable).
    Syntax,
    /// The script failed while running (unknown function, wrong type, division by zero…).
    Runtime,
    /// The script ran more operations than allowed.
    LimitOperations,
    /// Calls or expressions nested deeper than allowed.
    LimitDepth,
    /// A string, array, map or the number of variables grew beyond its limit.
    LimitSize,
    /// The script ran longer than its time budget.
    Timeout,
    /// The script tried something scripts may not do (`import`, `eval`, changing the invoice).
    Forbidden,
    /// A condition gave something other than `true` or `false`.
    NotBool,
}

impl ScriptErrorKind {
    /// A short lowercase name (`syntax`, `limit_operations`…), also used in the error code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Syntax => "syntax",
            Self::Runtime => "runtime",
            Self::LimitOperations => "limit_operations",
            Self::LimitDepth => "limit_depth",
            Self::LimitSize => "limit_size",
            Self::Timeout => "timeout",
            Self::Forbidden => "forbidden",
            Self::NotBool => "not_bool",
        }
    }
}

impl fmt::Display for ScriptErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A script that does not compile, fails, or exceeds a limit.
///
/// `line` and `column` are 1-based positions **inside the script text** (for a `functions`
/// file, inside that file); the caller maps them into the scenario file and adds the
/// scenario, the step and the invoice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ScriptError {
    /// What happened, lowercase, with user input in backticks.
    pub message: String,
    /// Line in the script, 1-based, when known.
    pub line: Option<usize>,
    /// Column in the script, 1-based, when known.
    pub column: Option<usize>,
    /// The category, for callers and tests.
    pub kind: ScriptErrorKind,
    /// How to fix it.
    pub help: String,
}

impl miette::Diagnostic for ScriptError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(format!("relance::script::{}", self.kind)))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(&self.help))
    }
}

impl ScriptError {
    pub(super) fn new(
        kind: ScriptErrorKind,
        message: impl Into<String>,
        help: impl Into<String>,
        pos: Position,
    ) -> Self {
        Self { message: message.into(), line: pos.line(), column: pos.position(), kind, help: help.into() }
    }

    /// A condition that did not give a boolean.
    pub(super) fn not_bool(value: &Dynamic) -> Self {
        let shown = show_value(value);
        let got = match shown.as_str() {
            "" => article(type_of(value)),
            s => format!("{} {s}", article(type_of(value))),
        };
        Self::new(
            ScriptErrorKind::NotBool,
            format!("the condition gave {got}, not `true` or `false`"),
            "make the last expression a comparison or a test, e.g. `invoice.amount > 500`",
            Position::NONE,
        )
    }

    /// A parse error of a condition or a `functions` file.
    pub(super) fn from_parse(err: &ParseError, limits: &ScriptLimits) -> Self {
        let pos = err.position();
        let t = err.err_type();
        let (kind, message, help) = match t {
            ParseErrorType::ExprTooDeep => (
                ScriptErrorKind::LimitDepth,
                format!("the script nests expressions deeper than {} levels", limits.max_expr_depth),
                "split the expression with `let` variables or helper functions".to_owned(),
            ),
            ParseErrorType::LiteralTooLarge(what, max) => (
                ScriptErrorKind::LimitSize,
                format!("{} longer than the limit of {max}", lower_first(what)),
                "shorten the literal".to_owned(),
            ),
            ParseErrorType::BadInput(rhai::LexError::StringTooLong(max)) => (
                ScriptErrorKind::LimitSize,
                format!("a string literal is longer than the limit of {max} bytes"),
                "shorten the literal".to_owned(),
            ),
            ParseErrorType::BadInput(rhai::LexError::ImproperSymbol(sym, _))
                if super::FORBIDDEN_KEYWORDS.contains(&sym.as_str()) =>
            {
                forbidden_keyword(sym)
            }
            ParseErrorType::Reserved(sym) if super::FORBIDDEN_KEYWORDS.contains(&sym.as_str()) => {
                forbidden_keyword(sym)
            }
            ParseErrorType::VariableUndefined(name) => (
                ScriptErrorKind::Syntax,
                format!("unknown variable `{name}`"),
                format!(
                    "conditions can read {}; functions see only their parameters",
                    super::VARIABLES.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ")
                ),
            ),
            ParseErrorType::FnDuplicatedDefinition(name, n) => (
                ScriptErrorKind::Syntax,
                format!("function `{name}` with {n} parameter(s) is defined twice"),
                "rename or remove one of the definitions".to_owned(),
            ),
            other => (
                ScriptErrorKind::Syntax,
                lower_first(&sanitize(&other.to_string())),
                "fix the rhai syntax at this position".to_owned(),
            ),
        };
        Self::new(kind, message, help, pos)
    }

    /// A runtime error. Errors inside functions of a `functions` file are reported at the call
    /// in the script, and the message says where in the file it failed.
    pub(super) fn from_eval(err: &EvalAltResult, limits: &ScriptLimits) -> Self {
        let mut pos = err.position();
        let mut in_script = true;
        let mut file_frame: Option<(String, String)> = None;
        let mut cur = err;
        while let EvalAltResult::ErrorInFunctionCall(name, source, inner, p) = cur {
            if in_script {
                pos = *p;
            }
            if !source.is_empty() {
                in_script = false;
                file_frame = Some((name.clone(), source.clone()));
            }
            cur = inner;
        }
        if in_script && !cur.position().is_none() {
            pos = cur.position();
        }
        let mut e = Self::from_leaf(cur, limits);
        if let Some((name, source)) = file_frame {
            let at = cur.position();
            let place = match (at.line(), at.position()) {
                (Some(l), Some(c)) => format!(", line {l}, column {c}"),
                (Some(l), None) => format!(", line {l}"),
                _ => String::new(),
            };
            e.message = format!("{} (in function `{name}` of `{source}`{place})", e.message);
        }
        e.line = pos.line();
        e.column = pos.position();
        e
    }

    fn from_leaf(err: &EvalAltResult, limits: &ScriptLimits) -> Self {
        use EvalAltResult as E;
        use ScriptErrorKind as K;
        let pos = err.position();
        let (kind, message, help): (K, String, String) = match err {
            E::ErrorParsing(p, _) => {
                let pe = ParseError(Box::new(p.clone()), pos);
                return Self::from_parse(&pe, limits);
            }
            E::ErrorTooManyOperations(_) => (
                K::LimitOperations,
                format!("the script ran more than {} operations", limits.max_operations),
                "look for an endless loop; conditions should be short".into(),
            ),
            E::ErrorStackOverflow(_) => (
                K::LimitDepth,
                format!("function calls nested deeper than {} levels", limits.max_call_depth),
                "look for a function that calls itself without end".into(),
            ),
            E::ErrorDataTooLarge(what, _) => {
                let w = what.to_lowercase();
                let (thing, max) = if w.contains("string") {
                    ("a string", format!("{} bytes", limits.max_string_size))
                } else if w.contains("array") || w.contains("blob") {
                    ("an array", format!("{} items", limits.max_array_size))
                } else if w.contains("map") {
                    ("a map", format!("{} entries", limits.max_map_size))
                } else {
                    ("a value", "the size limit".to_owned())
                };
                (K::LimitSize, format!("{thing} grew beyond {max}"), "build smaller values".into())
            }
            E::ErrorTooManyVariables(_) => {
                (K::LimitSize, "the script declares too many variables".into(), "use fewer variables".into())
            }
            E::ErrorTerminated(token, _) if token.is_string() => (
                K::Timeout,
                format!("the script ran longer than its time budget of {} ms", limits.time_budget.as_millis()),
                "make the script do less work".into(),
            ),
            E::ErrorModuleNotFound(path, _) => (
                K::Forbidden,
                format!("`import \"{path}\"` is not allowed"),
                "declare helper files with `functions \"file.rhai\"` in the scenario file".into(),
            ),
            E::ErrorTooManyModules(_) | E::ErrorInModule(..) => (
                K::Forbidden,
                "`import` is not allowed".into(),
                "declare helper files with `functions \"file.rhai\"` in the scenario file".into(),
            ),
            E::ErrorFunctionNotFound(sig, _) => function_not_found(sig),
            E::ErrorAssignmentToConstant(name, _) => {
                (K::Forbidden, format!("`{name}` is read-only"), "assign to a new variable with `let` instead".into())
            }
            E::ErrorNonPureMethodCallOnConstant(name, _) => (
                K::Forbidden,
                format!("`{name}` would change a read-only value"),
                "copy the value into a `let` variable first".into(),
            ),
            E::ErrorVariableNotFound(name, _) => (
                K::Runtime,
                format!("unknown variable `{name}`"),
                format!(
                    "conditions can read {}",
                    super::VARIABLES.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ")
                ),
            ),
            E::ErrorPropertyNotFound(name, _) => (
                K::Runtime,
                format!("unknown property `{name}`"),
                "check the spelling; extra columns are read with `invoice[\"name\"]`".into(),
            ),
            E::ErrorDotExpr(msg, _) if msg.starts_with("No writable property") => (
                K::Forbidden,
                format!("`{}` is read-only", quoted(msg)),
                "scripts cannot change the invoice or the customer; use a `let` variable".into(),
            ),
            E::ErrorIndexingType(ty, _) if ty.contains("] =") => (
                K::Forbidden,
                format!("{} is read-only", article(&type_name(ty.split(" [").next().unwrap_or(ty)))),
                "scripts cannot change the invoice or the customer; use a `let` variable".into(),
            ),
            E::ErrorDotExpr(msg, _) if msg.starts_with("Unknown property") => (
                K::Runtime,
                format!(
                    "{} has no property `{}`",
                    article(&type_name(msg.split('\'').nth(3).unwrap_or("value"))),
                    quoted(msg)
                ),
                "check the spelling of the property".into(),
            ),
            E::ErrorDotExpr(msg, _) => (K::Runtime, lower_first(&sanitize(msg)), "check the property name".into()),
            E::ErrorMismatchDataType(expected, actual, _) => (
                K::Runtime,
                format!("expected {}, got {}", article(&type_name(expected)), article(&type_name(actual))),
                "convert the value, e.g. with `to_decimal(x)`".into(),
            ),
            E::ErrorMismatchOutputType(expected, actual, _) => (
                K::Runtime,
                format!("expected {}, got {}", article(&type_name(expected)), article(&type_name(actual))),
                "convert the value".into(),
            ),
            E::ErrorIndexingType(ty, _) => (
                K::Runtime,
                format!("{} cannot be indexed like this", article(&type_name(ty))),
                "index arrays with integers and invoices, customers or maps with strings".into(),
            ),
            E::ErrorArrayBounds(len, idx, _) => (
                K::Runtime,
                format!("index {idx} is out of bounds for an array of {len} items"),
                "check the array length with `len()` first".into(),
            ),
            E::ErrorStringBounds(len, idx, _) => (
                K::Runtime,
                format!("index {idx} is out of bounds for a string of {len} characters"),
                "check the string length with `len()` first".into(),
            ),
            E::ErrorArithmetic(msg, _) => {
                (K::Runtime, lower_first(&sanitize(msg)), "check for a division by zero or an overflow".into())
            }
            E::ErrorRuntime(value, _) if value.is::<super::HelperError>() => {
                let h = value.clone().cast::<super::HelperError>();
                (K::Runtime, h.message, h.help.to_owned())
            }
            E::ErrorRuntime(value, _) => (
                K::Runtime,
                format!("the script failed with {}", show_value(value)),
                "fix the data or the script that raised this error".into(),
            ),
            other => (
                K::Runtime,
                lower_first(&sanitize(&strip_position(&other.to_string()))),
                "fix the script at this position".into(),
            ),
        };
        Self::new(kind, message, help, pos)
    }
}

fn forbidden_keyword(sym: &str) -> (ScriptErrorKind, String, String) {
    let help = match sym {
        "import" | "export" => "declare helper files with `functions \"file.rhai\"` in the scenario file",
        _ => "write the logic directly in the script or in a `functions` file",
    };
    (ScriptErrorKind::Forbidden, format!("`{sym}` is not allowed in scripts"), help.to_owned())
}

/// `open (&str | ImmutableString | String)` → a message naming the function and argument types.
fn function_not_found(sig: &str) -> (ScriptErrorKind, String, String) {
    let (name, args) = match sig.split_once(" (") {
        Some((n, rest)) => (n.trim(), rest.trim_end_matches(')')),
        None => (sig.trim(), ""),
    };
    let args: Vec<String> =
        if args.trim().is_empty() { Vec::new() } else { split_args(args).iter().map(|a| type_name(a)).collect() };
    if let Some(prop) = name.strip_prefix("set$") {
        return (
            ScriptErrorKind::Forbidden,
            format!("`{prop}` is read-only"),
            "scripts cannot change the invoice or the customer; use a `let` variable".into(),
        );
    }
    if let Some(prop) = name.strip_prefix("get$") {
        let on = args.first().map(String::as_str).unwrap_or("value");
        return (
            ScriptErrorKind::Runtime,
            format!("{} has no property `{prop}`", article(on)),
            "check the spelling; extra columns are read with `invoice[\"name\"]` or `customer[\"name\"]`".into(),
        );
    }
    if name == "index$set$" {
        return (
            ScriptErrorKind::Forbidden,
            format!("{} is read-only", article(args.first().map(String::as_str).unwrap_or("value"))),
            "scripts cannot change the invoice or the customer; use a `let` variable".into(),
        );
    }
    if name == "index$get$" {
        return (
            ScriptErrorKind::Runtime,
            format!("cannot index {}", args.iter().map(|a| article(a)).collect::<Vec<_>>().join(" with ")),
            "index arrays with integers and invoices, customers or maps with strings".into(),
        );
    }
    let shown = if is_operator(name) && args.len() == 2 {
        format!("`{}` between {} and {}", name, article(&args[0]), article(&args[1]))
    } else {
        format!("function `{}({})`", name, args.join(", "))
    };
    (
        ScriptErrorKind::Runtime,
        format!("unknown {shown}"),
        "scripts can call only the built-in helpers and the functions of `functions` files; \
         they have no file, network or process access"
            .into(),
    )
}

fn is_operator(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| "+-*/%<>=!&|^".contains(c))
}

/// Splits `a, b | c, d` at top-level commas.
fn split_args(args: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0_i32;
    let mut start = 0;
    for (i, c) in args.char_indices() {
        match c {
            '<' | '(' | '[' => depth += 1,
            '>' | ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(args[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(args[start..].trim());
    out
}

/// A type name as a scenario writer knows it (never a Rust path).
pub(super) fn type_name(raw: &str) -> String {
    let raw = raw.trim().trim_start_matches("&mut ").trim_start_matches('&');
    if raw.contains('|') {
        let names: Vec<String> = raw.split('|').map(type_name).collect();
        if let Some(first) = names.first()
            && names.iter().all(|n| n == first)
        {
            return first.clone();
        }
        return names.join(" or ");
    }
    let last = raw.rsplit("::").next().unwrap_or(raw);
    match last {
        "str" | "String" | "ImmutableString" | "string" | "SmartString" => "string",
        "i64" | "i32" | "INT" | "u64" | "usize" | "integer" => "integer",
        "Decimal" | "decimal" => "decimal",
        "bool" | "boolean" => "boolean",
        "char" => "character",
        "()" => "()",
        "Array" | "array" | "Vec<Dynamic>" => "array",
        "Map" | "map" => "map",
        "Blob" | "blob" => "blob",
        "FnPtr" | "Fn" => "function pointer",
        "InvoiceView" | "invoice" => "invoice",
        "CustomerView" | "customer" => "customer",
        "ScriptDate" | "date" => "date",
        "Dynamic" => "value",
        _ if last.starts_with("Range") || last.starts_with("range") => "range",
        _ => return last.to_lowercase(),
    }
    .to_owned()
}

/// The type of a value as a scenario writer knows it.
pub(super) fn type_of(value: &Dynamic) -> &'static str {
    if value.is_unit() {
        "()"
    } else if value.is_bool() {
        "boolean"
    } else if value.is_int() {
        "integer"
    } else if value.is_decimal() {
        "decimal"
    } else if value.is_string() {
        "string"
    } else if value.is_char() {
        "character"
    } else if value.is_array() {
        "array"
    } else if value.is_map() {
        "map"
    } else if value.is::<ScriptDate>() {
        "date"
    } else if value.is::<InvoiceView>() {
        "invoice"
    } else if value.is::<CustomerView>() {
        "customer"
    } else {
        "value"
    }
}

fn article(ty: &str) -> String {
    match ty {
        "()" => "nothing (`()`)".to_owned(),
        t if t.starts_with(['a', 'e', 'i', 'o', 'u']) => format!("an {t}"),
        t => format!("a {t}"),
    }
}

fn show_value(value: &Dynamic) -> String {
    if value.is_unit() {
        return String::new();
    }
    let mut s = if value.is_string() {
        value.clone().into_string().unwrap_or_default()
    } else if value.is::<ScriptDate>() {
        value.clone().try_cast::<ScriptDate>().map(|d| d.0.to_string()).unwrap_or_default()
    } else if value.is::<InvoiceView>() || value.is::<CustomerView>() {
        return String::new();
    } else {
        value.to_string()
    };
    if s.chars().count() > 60 {
        s = s.chars().take(60).collect::<String>() + "…";
    }
    format!("`{s}`")
}

/// Replaces Rust type names that rhai puts in some messages.
fn sanitize(msg: &str) -> String {
    let mut out = msg.to_owned();
    for (from, to) in [
        ("&str | ImmutableString | String", "string"),
        ("rust_decimal::decimal::Decimal", "decimal"),
        ("rust_decimal::Decimal", "decimal"),
        ("ImmutableString", "string"),
        ("i64", "integer"),
    ] {
        out = out.replace(from, to);
    }
    out
}

/// The first `'quoted'` word of a rhai message.
fn quoted(msg: &str) -> &str {
    msg.split('\'').nth(1).unwrap_or(msg)
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" (line ") {
        Some(i) if msg.ends_with(')') => msg[..i].to_owned(),
        _ => msg.to_owned(),
    }
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}
