//! TEMPORARY facade with the API of the rhai branch (replaced at merge).
#![allow(missing_docs, dead_code)]
use crate::model::{Customer, Invoice};
use chrono::NaiveDate;
use rust_decimal::Decimal;

#[derive(Debug, Default, Clone)]
pub struct ScriptLimits;
#[derive(Debug)]
pub struct ScriptEngine;
#[derive(Debug, Clone)]
pub struct CompiledScript(String);
#[derive(Debug, Clone)]
pub struct ScriptError { pub message: String, pub line: Option<usize>, pub column: Option<usize> }
pub struct ScriptContext<'a> {
    pub invoice: &'a Invoice,
    pub customer: &'a Customer,
    pub as_of: NaiveDate,
    pub outstanding: Decimal,
    pub days_late: i64,
    pub balance: Decimal,
    pub overdue_balance: Decimal,
    pub reminders_sent: u32,
    pub reminded: bool,
    pub promise_to_pay: bool,
}
impl ScriptEngine {
    pub fn new(_: ScriptLimits) -> Self { ScriptEngine }
    pub fn add_functions(&mut self, _name: &str, _source: &str) -> Result<(), ScriptError> { Ok(()) }
    pub fn compile(&self, source: &str) -> Result<CompiledScript, ScriptError> { Ok(CompiledScript(source.to_owned())) }
    pub fn eval_bool(&self, _: &CompiledScript, _: &ScriptContext<'_>) -> Result<bool, ScriptError> {
        Err(ScriptError { message: "rhai is not wired yet".into(), line: None, column: None })
    }
    pub fn describe<'a>(&self, s: &'a CompiledScript) -> &'a str { &s.0 }
}

pub fn resolve_functions_path(scenario_file: &std::path::Path, written: &str) -> Result<std::path::PathBuf, ScriptError> {
    Ok(scenario_file.parent().unwrap_or(std::path::Path::new(".")).join(written))
}
