use iso_currency::Currency;
use rust_decimal_macros::dec;

use super::*;
use crate::model::{Customer, Extra, Invoice};

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn invoice() -> Invoice {
    let mut i = Invoice::new("F-2025-001", "C1", d(2025, 3, 1), dec!(1200.00), Currency::EUR);
    i.issue_date = Some(d(2025, 1, 30));
    i.extra = Extra::from([("po_number".to_owned(), "PO-77".to_owned())]);
    i
}

fn customer() -> Customer {
    let mut c = Customer::new("C1", "Acme SARL", "smb");
    c.tags = vec!["vip".into(), "export".into()];
    c.avg_days_late = Some(dec!(24.5));
    c.extra =
        Extra::from([("region".to_owned(), "north".to_owned()), ("yearly_revenue".to_owned(), "18000.00".to_owned())]);
    c
}

fn ctx<'a>(i: &'a Invoice, c: &'a Customer) -> ScriptContext<'a> {
    ScriptContext {
        invoice: i,
        customer: c,
        as_of: d(2025, 3, 20),
        outstanding: dec!(1000.00),
        days_late: 19,
        balance: dec!(3000),
        overdue_balance: dec!(2500),
        reminders_sent: 2,
        reminded: true,
        promise_to_pay: false,
    }
}

fn eval(src: &str) -> Result<bool, ScriptError> {
    let e = ScriptEngine::default();
    let (i, c) = (invoice(), customer());
    let s = e.compile(src)?;
    e.eval_bool(&s, &ctx(&i, &c))
}

fn is_true(src: &str) {
    match eval(src) {
        Ok(true) => {}
        other => panic!("`{src}` should be true, got {other:?}"),
    }
}

fn err(src: &str) -> ScriptError {
    match eval(src) {
        Err(e) => e,
        Ok(v) => panic!("`{src}` should fail, got {v}"),
    }
}

#[test]
fn invoice_fields_are_readable() {
    is_true("invoice.amount == 1200 && invoice.amount > 500");
    is_true("invoice.outstanding == 1000");
    is_true("invoice.days_late == 19 && days_late == 19");
    is_true("invoice.currency == \"EUR\"");
    is_true("invoice.id == \"F-2025-001\" && invoice.customer_id == \"C1\"");
    is_true("!invoice.disputed && !invoice.payment_plan");
    is_true("invoice.due_date == date(2025, 3, 1)");
    is_true("invoice.issue_date < invoice.due_date");
    is_true("invoice.promise_date == () && invoice.terms == ()");
}

#[test]
fn payment_terms_are_the_extra_column_terms() {
    let e = ScriptEngine::default();
    let (mut i, c) = (invoice(), customer());
    i.extra.insert("terms", "45 days end of month");
    for src in ["invoice.terms == \"45 days end of month\"", "invoice[\"terms\"].contains(\"end of month\")"] {
        let s = e.compile(src).unwrap();
        assert!(e.eval_bool(&s, &ctx(&i, &c)).unwrap(), "{src}");
    }
}

#[test]
fn extra_columns_by_name_or_index_and_unit_when_absent() {
    is_true("invoice.extra(\"po_number\") == \"PO-77\"");
    is_true("invoice[\"po_number\"] == \"PO-77\"");
    is_true("invoice[\"nope\"] == ()");
    is_true("customer[\"region\"] == \"north\" && customer.extra(\"region\") == \"north\"");
    is_true("type_of(customer[\"missing\"]) == \"()\"");
}

#[test]
fn customer_fields_are_readable() {
    is_true("customer.id == \"C1\" && customer.name == \"Acme SARL\" && customer.segment == \"smb\"");
    is_true("customer.tags.contains(\"vip\") && customer.has_tag(\"export\") && !customer.has_tag(\"x\")");
    is_true("customer.tags.len() == 2");
    is_true("customer.avg_days_late > 20");
    is_true("customer.email == ()");
}

#[test]
fn plain_variables() {
    is_true("balance == 3000 && overdue_balance == 2500 && outstanding == 1000");
    is_true("reminders_sent == 2 && reminded && !promise_to_pay");
}

#[test]
fn decimals_are_exact() {
    is_true("0.1 + 0.2 == 0.3");
    is_true("type_of(0.1) == \"decimal\"");
    is_true("round_half_up(10.125, 2) == 10.13 && round_half_up(-10.125, 2) == -10.13");
    is_true("round_half_up(2.5, 0) == 3");
    is_true("percent(invoice.amount, 5) == 60 && percent(200, 2.5) == 5");
    is_true("to_decimal(\"1234.56\") == 1234.56 && to_decimal(3) == 3");
}

#[test]
fn dates_compare_and_compute() {
    is_true("today() == date(2025, 3, 20)");
    is_true("days_between(invoice.due_date, today()) == 19");
    is_true("today() - invoice.due_date == 19");
    is_true("add_days(invoice.due_date, 30) == date(2025, 3, 31)");
    is_true("invoice.due_date + 31 == parse_date(\"2025-04-01\")");
    is_true("invoice.due_date - 1 == date(2025, 2, 28)");
    is_true("invoice.due_date.year == 2025 && invoice.due_date.month == 3 && invoice.due_date.day == 1");
    is_true("invoice.due_date < today() && today() >= invoice.due_date && today() != invoice.due_date");
    is_true("`${invoice.due_date}` == \"2025-03-01\"");
}

#[test]
fn spec_example_average_delay_and_yearly_revenue() {
    // "Call first if the customer's average delay over the last year exceeds 20 days and the
    // invoice is over 5% of its yearly revenue."
    let src = "customer.avg_days_late > 20 && invoice.amount > percent(to_decimal(customer[\"yearly_revenue\"]), 5)";
    is_true(src);
    let e = ScriptEngine::default();
    let s = e.compile(src).unwrap();
    let (i, mut c) = (invoice(), customer());
    c.extra.insert("yearly_revenue".to_owned(), "30000".to_owned()); // 5 % = 1500 > 1200
    assert!(!e.eval_bool(&s, &ctx(&i, &c)).unwrap());
    c.avg_days_late = None;
    let err = e.eval_bool(&s, &ctx(&i, &c)).unwrap_err();
    assert_eq!(err.kind, ScriptErrorKind::Runtime, "{err:?}");
    assert_eq!(err.message, "cannot compare nothing (`()`) with an integer using `>`");
}

#[test]
fn functions_file_helpers_are_callable() {
    let mut e = ScriptEngine::default();
    e.add_functions(
        "helpers.rhai",
        r#"
        // Share of the yearly revenue this invoice represents, in percent.
        fn revenue_share(invoice, customer) {
            let revenue = to_decimal(customer["yearly_revenue"]);
            if revenue == 0 { return 0; }
            invoice.amount * 100 / revenue
        }
        fn slow_payer(customer) { customer.avg_days_late != () && customer.avg_days_late > 20 }
        "#,
    )
    .unwrap();
    let s = e.compile("slow_payer(customer) && revenue_share(invoice, customer) > 5").unwrap();
    let (i, c) = (invoice(), customer());
    assert!(e.eval_bool(&s, &ctx(&i, &c)).unwrap());
    let mut small = invoice();
    small.amount = dec!(100);
    assert!(!e.eval_bool(&s, &ctx(&small, &c)).unwrap());
}

#[test]
fn functions_defined_twice_across_files_are_an_error() {
    let mut e = ScriptEngine::default();
    e.add_functions("a.rhai", "fn f(x) { x }").unwrap();
    let err = e.add_functions("b.rhai", "fn f(y) { y + 1 }").unwrap_err();
    assert!(err.message.contains("`a.rhai`") && err.message.contains("`b.rhai`"), "{}", err.message);
}

#[test]
fn error_in_a_functions_file_names_the_file_and_points_at_the_call() {
    let mut e = ScriptEngine::default();
    e.add_functions("helpers.rhai", "fn ratio(a, b) {\n    a / b\n}").unwrap();
    let s = e.compile("let x = 1;\nratio(x, 0) > 1").unwrap();
    let (i, c) = (invoice(), customer());
    let err = e.eval_bool(&s, &ctx(&i, &c)).unwrap_err();
    assert_eq!(err.kind, ScriptErrorKind::Runtime);
    assert_eq!((err.line, err.column), (Some(2), Some(1)), "{err:?}");
    assert!(err.message.contains("in function `ratio` of `helpers.rhai`, line 2"), "{}", err.message);
}

#[test]
fn non_bool_result_names_the_type() {
    let e = err("invoice.amount");
    assert_eq!(e.kind, ScriptErrorKind::NotBool);
    assert_eq!(e.message, "the condition gave a decimal `1200.00`, not `true` or `false`");
    let e = err("invoice.id");
    assert_eq!(e.message, "the condition gave a string `F-2025-001`, not `true` or `false`");
    let e = err("invoice[\"nope\"]");
    assert_eq!(e.message, "the condition gave nothing (`()`), not `true` or `false`");
}

#[test]
fn setters_fail() {
    for src in [
        "invoice.amount = 0; true",
        "invoice[\"po_number\"] = \"x\"; true",
        "customer.name = \"x\"; true",
        "days_late = 0; true",
        "invoice = 1; true",
    ] {
        let e = err(src);
        assert_eq!(e.kind, ScriptErrorKind::Forbidden, "`{src}`: {e:?}");
        assert!(e.message.contains("read-only"), "`{src}`: {}", e.message);
    }
}

#[test]
fn syntax_error_reports_line_and_column_inside_the_script() {
    let e = err("invoice.amount > 500 &&\n  (days_late > ");
    assert_eq!(e.kind, ScriptErrorKind::Syntax);
    assert_eq!(e.line, Some(2), "{e:?}");
    assert!(e.column.is_some());
    let e = err("invoice.amount > 500 && dayz_late > 3");
    assert_eq!(e.kind, ScriptErrorKind::Syntax);
    assert_eq!(e.message, "unknown variable `dayz_late`");
    assert_eq!((e.line, e.column), (Some(1), Some(25)));
}

#[test]
fn unknown_function_and_property_are_clear() {
    let e = err("open(\"/etc/passwd\") == \"\"");
    assert_eq!(e.kind, ScriptErrorKind::Runtime);
    assert_eq!(e.message, "unknown function `open(string)`");
    assert!(e.help.contains("no file, network or process access"));
    // An unknown property reads as a missing extra column: `()`, which cannot be compared.
    let e = err("invoice.amout > 3");
    assert_eq!(e.message, "cannot compare nothing (`()`) with an integer using `>`");
    assert!(e.help.contains("a value is missing"));
    assert_eq!((e.line, e.column), (Some(1), Some(15)));
    let e = err("date(2025, 1, 1).yeer == 2025");
    assert_eq!(e.message, "a date has no property `yeer`");
}

#[test]
fn wall_clock_and_sleep_are_not_there() {
    for src in ["timestamp() > 0", "sleep(10); true", "exit(true)"] {
        let e = err(src);
        assert!(e.message.starts_with("unknown function"), "`{src}`: {}", e.message);
    }
}

#[test]
fn scope_is_clean_between_evaluations() {
    let e = ScriptEngine::default();
    let s = e.compile("let seen = 1; seen == 1").unwrap();
    let (i, c) = (invoice(), customer());
    for _ in 0..3 {
        assert!(e.eval_bool(&s, &ctx(&i, &c)).unwrap());
    }
    // Values follow the context, also for strings and extra columns of another shape.
    let probe = e.compile("invoice.id + \"/\" + customer.name + \"/\" + invoice[\"po_number\"]").unwrap();
    let mut j = invoice();
    j.id = "a-much-longer-invoice-identifier-than-before".into();
    j.extra = Extra::from([("a".to_owned(), "1".to_owned()), ("po_number".to_owned(), "PO-9".to_owned())]);
    let mut k = customer();
    k.name = "B".into();
    let got = |i: &Invoice, c: &Customer| e.eval(&probe, &ctx(i, c)).unwrap().into_string().unwrap();
    assert_eq!(got(&i, &c), "F-2025-001/Acme SARL/PO-77");
    assert_eq!(got(&j, &k), "a-much-longer-invoice-identifier-than-before/B/PO-9");
    assert_eq!(got(&i, &c), "F-2025-001/Acme SARL/PO-77");
}

#[test]
fn today_outside_an_evaluation_is_an_error() {
    let mut e = ScriptEngine::default();
    let err = e.add_functions("t.rhai", "let t = today();").unwrap_err();
    assert!(err.message.contains("`today()`"), "{}", err.message);
}

#[test]
fn engine_and_script_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ScriptEngine>();
    assert_send_sync::<CompiledScript>();
    assert_send_sync::<ScriptError>();
}

#[test]
fn shared_ast_across_threads() {
    let e = ScriptEngine::default();
    let s = e.compile("invoice.amount > 500 && days_late > 10").unwrap();
    let (i, c) = (invoice(), customer());
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|n| {
                let (e, s, i, c) = (&e, &s, &i, &c);
                scope.spawn(move || {
                    let mut cx = ctx(i, c);
                    cx.days_late = n * 5;
                    e.eval_bool(s, &cx).unwrap()
                })
            })
            .collect();
        let got: Vec<bool> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(got, vec![false, false, false, true]);
    });
}

#[test]
fn describe_returns_the_source_verbatim() {
    let e = ScriptEngine::default();
    let src = "invoice.amount > 500  &&  days_late > 10";
    let s = e.compile(src).unwrap();
    assert_eq!(e.describe(&s), src);
}

#[test]
fn resolve_functions_path_stays_in_the_scenario_folder() {
    let base = Path::new("/srv/scenarios/main.relance");
    assert_eq!(resolve_functions_path(base, "helpers.rhai").unwrap(), Path::new("/srv/scenarios/helpers.rhai"));
    assert_eq!(resolve_functions_path(base, "./lib/../lib/h.rhai").unwrap(), Path::new("/srv/scenarios/lib/h.rhai"));
    for bad in ["../x.rhai", "/etc/passwd", "lib/../../x.rhai", "", "."] {
        let e = resolve_functions_path(base, bad).unwrap_err();
        assert_eq!(e.kind, ScriptErrorKind::Forbidden, "{bad}");
    }
    assert_eq!(resolve_functions_path(Path::new("s.relance"), "h.rhai").unwrap(), Path::new("./h.rhai"));
}

#[cfg(unix)]
#[test]
fn resolve_functions_path_refuses_a_symlink_out() {
    let dir = tempfile_dir();
    let inside = dir.join("scen");
    std::fs::create_dir_all(&inside).unwrap();
    std::fs::write(dir.join("secret.rhai"), "fn f() { 1 }").unwrap();
    std::os::unix::fs::symlink(dir.join("secret.rhai"), inside.join("link.rhai")).unwrap();
    std::fs::write(inside.join("ok.rhai"), "fn g() { 1 }").unwrap();
    let scen = inside.join("a.relance");
    assert!(resolve_functions_path(&scen, "ok.rhai").is_ok());
    assert_eq!(resolve_functions_path(&scen, "link.rhai").unwrap_err().kind, ScriptErrorKind::Forbidden);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(unix)]
fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("relance-script-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn diagnostic_has_code_and_help() {
    use miette::Diagnostic;
    // A generous time budget, so that the operation limit is what stops the loop even in a
    // slow debug build.
    let limits = ScriptLimits { time_budget: std::time::Duration::from_secs(60), ..ScriptLimits::default() };
    let engine = ScriptEngine::new(limits);
    let (i, c) = (invoice(), customer());
    let e = engine.eval_bool(&engine.compile("loop {}").unwrap(), &ctx(&i, &c)).unwrap_err();
    assert_eq!(e.kind, ScriptErrorKind::LimitOperations);
    assert_eq!(e.code().unwrap().to_string(), "relance::script::limit_operations");
    assert!(e.help().is_some());
    assert_eq!(e.to_string(), "the script ran more than 100000 operations");
}

#[test]
fn needs_are_found_from_the_text() {
    let n = needs("invoice.amount > 500 && days_late > 10");
    assert_eq!(n, Needs { invoice: true, customer: false, strings: false, extras: false });
    let n = needs("customer.tags.contains(\"vip\") && balance > 1_000");
    assert_eq!(n, Needs { invoice: false, customer: true, strings: true, extras: false });
    // An unknown property of `invoice` reads an extra column.
    assert!(needs("invoice.po_number == \"PO-1\"").extras);
    assert!(needs("invoice[\"po_number\"] == ()").extras);
    assert!(needs("call(Fn(\"extra\"), invoice, \"po\") == ()").extras);
    assert!(needs("let x = 1; x > 0").extras, "an unknown name is assumed to be a property");
    assert!(needs("`${invoice.id}` == \"F\"").strings);
    assert!(needs("`${invoice.po}` == \"F\"").extras);
    assert!(needs("call(Fn(\"index$get$\"), invoice, \"po\") == ()").extras);
    assert!(needs("call(Fn(\"has_tag\"), customer, \"vip\")").strings);
    assert!(!needs("invoice.currency == \"EUR\" && \"a \\\" b\" != \"\"").extras);
}

#[test]
fn unknown_property_reads_the_extra_column() {
    is_true("invoice.po_number == \"PO-77\" && customer.region == \"north\"");
}

#[test]
fn scripts_with_different_needs_never_see_another_invoice() {
    let e = ScriptEngine::default();
    let scalar = e.compile("invoice.amount > 0").unwrap();
    let strings = e.compile("invoice.id + \"|\" + customer.name + \"|\" + invoice.po_number").unwrap();
    let c1 = customer();
    let mut c2 = customer();
    c2.name = "Other".into();
    let mut invoices = Vec::new();
    for k in 0..4 {
        let mut i = invoice();
        i.id = format!("F{k}").into();
        i.extra.insert("po_number".to_owned(), format!("PO-{k}"));
        invoices.push(i);
    }
    for (k, i) in invoices.iter().enumerate() {
        let c = if k % 2 == 0 { &c1 } else { &c2 };
        assert!(e.eval_bool(&scalar, &ctx(i, c)).unwrap());
        let got = e.eval(&strings, &ctx(i, c)).unwrap().into_string().unwrap();
        assert_eq!(got, format!("F{k}|{}|PO-{k}", c.name));
        assert!(e.eval_bool(&scalar, &ctx(i, c)).unwrap());
    }
}

#[test]
fn functions_file_needs_count_for_every_condition() {
    let mut e = ScriptEngine::default();
    let s = e.compile("describe(invoice) != \"\"").unwrap();
    // Added after compiling: what the file reads is still copied.
    e.add_functions("d.rhai", "fn describe(i) { i.id + \"/\" + i[\"po_number\"] }").unwrap();
    let probe = e.compile("describe(invoice)").unwrap();
    let (i, c) = (invoice(), customer());
    assert!(e.eval_bool(&s, &ctx(&i, &c)).unwrap());
    let got = e.eval(&probe, &ctx(&i, &c)).unwrap().into_string().unwrap();
    assert_eq!(got, "F-2025-001/PO-77");
}

#[test]
fn a_field_the_analysis_missed_is_an_error_not_a_stale_value() {
    // The function name is built at run time, so the text does not show that `extra` is read.
    let e = ScriptEngine::default();
    let s = e.compile("call(Fn(\"ex\" + \"tra\"), invoice, \"po_number\") == \"PO-77\"").unwrap();
    assert!(!s.needs.extras);
    let (i, c) = (invoice(), customer());
    for _ in 0..2 {
        let err = e.eval_bool(&s, &ctx(&i, &c)).unwrap_err();
        assert!(err.message.contains("was not made available"), "{}", err.message);
    }
}
