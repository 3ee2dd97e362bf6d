//! Hostile scripts: each is stopped by the sandbox with a clear error of the right kind.
//! No timing is asserted: only that evaluation ends, and how.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use chrono::NaiveDate;
use iso_currency::Currency;
use relance_engine::model::{Customer, Invoice};
use relance_engine::script::{ScriptContext, ScriptEngine, ScriptError, ScriptErrorKind, ScriptLimits};
use rust_decimal_macros::dec;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn run_with(engine: &ScriptEngine, src: &str) -> ScriptError {
    let invoice = Invoice::new("F1", "C1", d(2025, 1, 31), dec!(900), Currency::EUR);
    let customer = Customer::new("C1", "Acme", "smb");
    let ctx = ScriptContext {
        invoice: &invoice,
        customer: &customer,
        as_of: d(2025, 2, 20),
        outstanding: dec!(900),
        days_late: 20,
        balance: dec!(900),
        overdue_balance: dec!(900),
        reminders_sent: 0,
        reminded: false,
        promise_to_pay: false,
    };
    let script = match engine.compile(src) {
        Ok(s) => s,
        Err(e) => return e,
    };
    match engine.eval_bool(&script, &ctx) {
        Err(e) => e,
        Ok(v) => panic!("`{src}` should have been stopped, it gave {v}"),
    }
}

/// The default limits, except a time budget generous enough that a slow, loaded debug build
/// still meets the other limits first: these tests assert which limit stops a script.
fn run(src: &str) -> ScriptError {
    let limits = ScriptLimits { time_budget: Duration::from_secs(60), ..ScriptLimits::default() };
    run_with(&ScriptEngine::new(limits), src)
}

fn assert_clear(e: &ScriptError) {
    assert!(!e.message.is_empty() && !e.help.is_empty());
    let first = e.message.chars().next().unwrap();
    assert!(!first.is_uppercase(), "message starts lowercase: {}", e.message);
    assert!(!e.message.ends_with('.'), "no final period: {}", e.message);
    for rust in ["ImmutableString", "rust_decimal", "i64", "&str", "::", "Dynamic"] {
        assert!(!e.message.contains(rust), "no Rust type name in: {}", e.message);
    }
}

#[test]
fn infinite_loop_hits_the_operation_limit() {
    let e = run("loop {}");
    assert_eq!(e.kind, ScriptErrorKind::LimitOperations, "{e:?}");
    assert_eq!(e.message, "the script ran more than 100000 operations");
    assert_clear(&e);
    let e = run("let i = 0;\nwhile true { i += 1; }\ntrue");
    assert_eq!(e.kind, ScriptErrorKind::LimitOperations, "{e:?}");
    assert_eq!(e.line, Some(2), "{e:?}");
}

#[test]
fn infinite_loop_without_operation_limit_hits_the_time_budget() {
    let engine = ScriptEngine::new(ScriptLimits {
        max_operations: 0,
        time_budget: Duration::from_millis(5),
        ..ScriptLimits::default()
    });
    let e = run_with(&engine, "loop {}");
    assert_eq!(e.kind, ScriptErrorKind::Timeout, "{e:?}");
    assert_eq!(e.message, "the script ran longer than its time budget of 5 ms");
    assert_clear(&e);
    // The budget is per evaluation: the next one starts afresh.
    let e = run_with(&engine, "let n = 0; for i in 0..10 { n += i; } n");
    assert_eq!(e.kind, ScriptErrorKind::NotBool, "{e:?}");
}

#[test]
fn deep_recursion_hits_the_call_depth() {
    let e = run("fn down(n) { down(n + 1) }\ndown(0)");
    assert_eq!(e.kind, ScriptErrorKind::LimitDepth, "{e:?}");
    assert_eq!(e.message, "function calls nested deeper than 32 levels");
    assert_eq!((e.line, e.column), (Some(2), Some(1)), "{e:?}");
    assert_clear(&e);
}

#[test]
fn deep_recursion_in_a_functions_file_hits_the_call_depth() {
    let mut engine =
        ScriptEngine::new(ScriptLimits { time_budget: Duration::from_secs(60), ..ScriptLimits::default() });
    engine.add_functions("evil.rhai", "fn forever(x) {\n  forever(x) || true\n}").unwrap();
    let e = run_with(&engine, "days_late > 3 && forever(1)");
    assert_eq!(e.kind, ScriptErrorKind::LimitDepth, "{e:?}");
    // Limit errors are reported at the call in the script.
    assert_eq!((e.line, e.column), (Some(1), Some(18)), "{e:?}");
}

#[test]
fn deeply_nested_expression_is_refused_when_compiling() {
    let src = format!("{}1{} > 0", "(".repeat(200), ")".repeat(200));
    let e = run(&src);
    assert_eq!(e.kind, ScriptErrorKind::LimitDepth, "{e:?}");
    assert_clear(&e);
}

#[test]
fn huge_string_hits_the_size_limit() {
    let e = run("let s = \"x\"; loop { s += s; }");
    assert_eq!(e.kind, ScriptErrorKind::LimitSize, "{e:?}");
    assert_eq!(e.message, "a string grew beyond 4096 bytes");
    assert_clear(&e);
    let e = run("\"abc\".pad(100000, \"x\") == \"\"");
    assert_eq!(e.kind, ScriptErrorKind::LimitSize, "{e:?}");
}

#[test]
fn huge_array_hits_the_size_limit() {
    let e = run("let a = []; loop { a.push(1); }");
    assert_eq!(e.kind, ScriptErrorKind::LimitSize, "{e:?}");
    assert_eq!(e.message, "an array grew beyond 1024 items");
    assert_clear(&e);
    let e = run("let a = [1]; loop { a += a; }");
    assert_eq!(e.kind, ScriptErrorKind::LimitSize, "{e:?}");
    let e = run("let a = []; a.pad(5000, 0); true");
    assert_eq!(e.kind, ScriptErrorKind::LimitSize, "{e:?}");
}

#[test]
fn huge_map_hits_the_size_limit() {
    let e = run("let m = #{}; let i = 0; loop { m += #{}; m.set(`k${i}`, i); i += 1; }");
    assert_eq!(e.kind, ScriptErrorKind::LimitSize, "{e:?}");
    assert_eq!(e.message, "a map grew beyond 1024 entries");
    // rhai does not check the size after `m[k] = v`: the operation limit stops that one.
    let e = run("let m = #{}; let i = 0; loop { m[`k${i}`] = i; i += 1; }");
    assert_eq!(e.kind, ScriptErrorKind::LimitOperations, "{e:?}");
}

#[test]
fn import_is_refused() {
    let e = run("import \"/etc/passwd\" as p;\ntrue");
    assert_eq!(e.kind, ScriptErrorKind::Forbidden, "{e:?}");
    assert_eq!(e.message, "`import` is not allowed in scripts");
    assert_eq!(e.line, Some(1));
    assert_clear(&e);
}

#[test]
fn import_in_a_functions_file_is_refused() {
    let mut engine = ScriptEngine::default();
    let e = engine.add_functions("f.rhai", "import \"os\" as os;\nfn f() { 1 }").unwrap_err();
    assert_eq!(e.kind, ScriptErrorKind::Forbidden, "{e:?}");
}

#[test]
fn eval_is_refused() {
    let e = run("eval(\"open(\\\"/etc/passwd\\\")\")");
    assert_eq!(e.kind, ScriptErrorKind::Forbidden, "{e:?}");
    assert_eq!(e.message, "`eval` is not allowed in scripts");
    assert_clear(&e);
}

#[test]
fn file_process_and_network_functions_do_not_exist() {
    for src in [
        "open(\"/etc/passwd\") != ()",
        "read_file(\"/etc/passwd\") != ()",
        "system(\"rm -rf /\") == 0",
        "http_get(\"http://example.com\") != ()",
        "timestamp() > 0",
        "sleep(100000); true",
    ] {
        let e = run(src);
        assert_eq!(e.kind, ScriptErrorKind::Runtime, "`{src}`: {e:?}");
        assert!(e.message.starts_with("unknown function `"), "`{src}`: {}", e.message);
        assert!(e.help.contains("no file, network or process access"));
        assert_clear(&e);
    }
    // Calling by name through a function pointer does not get around it.
    let e = run("call(Fn(\"open\"), \"/etc/passwd\") != ()");
    assert_eq!(e.kind, ScriptErrorKind::Runtime, "{e:?}");
    assert!(e.message.contains("`open"), "{}", e.message);
}

#[test]
fn print_and_debug_go_nowhere() {
    // They exist (harmless) but write nothing; the script still has to give a boolean.
    let e = run("print(\"hello\"); debug(\"x\"); 1");
    assert_eq!(e.kind, ScriptErrorKind::NotBool, "{e:?}");
}

#[test]
fn functions_file_top_level_loop_is_stopped() {
    let mut engine =
        ScriptEngine::new(ScriptLimits { time_budget: Duration::from_secs(60), ..ScriptLimits::default() });
    let e = engine.add_functions("loop.rhai", "fn ok() { true }\nloop { }").unwrap_err();
    assert_eq!(e.kind, ScriptErrorKind::LimitOperations, "{e:?}");
}

#[test]
fn syntax_error_points_inside_the_script() {
    let e = run("invoice.amount > 500 &&\n   days_late >> ");
    assert_eq!(e.kind, ScriptErrorKind::Syntax, "{e:?}");
    assert_eq!(e.line, Some(2), "{e:?}");
    assert!(e.column.is_some());
    assert_clear(&e);
}

#[test]
fn thrown_error_is_reported() {
    let e = run("if days_late > 10 {\n  throw \"too late\";\n}\ntrue");
    assert_eq!(e.kind, ScriptErrorKind::Runtime, "{e:?}");
    assert_eq!(e.message, "the script failed with `too late`");
    assert_eq!(e.line, Some(2));
}

#[test]
fn deep_recursion_with_deep_expressions_does_not_overflow_the_native_stack() {
    // Each call level nests expressions up to the expression limit (12 and 8 are the deepest
    // that compile with a limit of 32): the native stack
    // (2 MiB on test and rayon threads) must hold 32 such levels.
    let nested = format!("{}f(n + 1){}", "(1 + ".repeat(12), ")".repeat(12));
    let e = run(&format!("fn f(n) {{ {nested} }}\nf(0) > 0"));
    assert_eq!(e.kind, ScriptErrorKind::LimitDepth, "{e:?}");
    assert_eq!(e.message, "function calls nested deeper than 32 levels");
    let blocks = format!("{}f(n + 1){}", "if true { ".repeat(8), " }".repeat(8));
    let e = run(&format!("fn f(n) {{ {blocks} }}\nf(0) > 0"));
    assert_eq!(e.message, "function calls nested deeper than 32 levels");
}
