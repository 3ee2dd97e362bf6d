//! Development tasks for relance: the synthetic portfolio generator, as a library (used by
//! the benchmarks) and as the `xtask` command.
//!
//! `cargo run -p xtask --release -- gen-portfolio --invoices N --customers M --seed S
//! --as-of YYYY-MM-DD --out DIR` writes a synthetic portfolio (customers.csv, invoices.csv,
//! payments.csv) of any size, deterministic for a seed, streamed to disk.
//!
//! By default the files look like an accounting export: account numbers as customer ids
//! (`C0000042`), listed in order, plain fields, `\n` line ends. Two options give the other
//! shapes exports come in (the same portfolio otherwise):
//! - `--quote-all`: every field quoted and `\r\n` line ends, as CRM exports write them;
//! - `--opaque-ids`: customer ids that are record ids of a CRM (`001` and 15 letters and
//!   digits, not in order), found by hash rather than by number;
//! - `--json`: customers.json, invoices.json and payments.json instead, each an array of
//!   objects (one a line, empty fields left out, amounts as numbers, `yes` as `true`), as
//!   an API or a document database exports them;
//! - `--xlsx`: one Excel workbook, portfolio.xlsx, with the sheets `customers`, `invoices`
//!   and `payments` (texts as inline strings, amounts as numbers, dates as dates, `yes` as
//!   TRUE), as streaming writers of exports write them;
//! - `--xlsx-shared`: the same workbook as Excel itself writes it: every text once in the
//!   shared strings table (`xl/sharedStrings.xml`), the cells pointing to it.
//!
//! Invoices go to customers evenly at random. `--key-accounts N --key-share P` gives P % of
//! them to N customers instead (key accounts with thousands of invoices each, spread
//! through the id range among the small ones, as in a distributor's or a utility's ledger);
//! without these options the files are the same as before they existed.
//!
//! ```no_run
//! let summary = xtask::Gen::new(10_000, 2_000, 42, chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(), "target/p10k".into())
//!     .run()
//!     .unwrap();
//! println!("{summary}");
//! ```

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use chrono::{Days, NaiveDate};

/// How to call `gen-portfolio`.
pub const USAGE: &str = "usage: cargo run -p xtask --release -- gen-portfolio --invoices N --customers M \
[--seed S] [--as-of YYYY-MM-DD] [--quote-all | --json | --xlsx | --xlsx-shared] [--opaque-ids] \
[--key-accounts N --key-share PERCENT] --out DIR";

/// splitmix64: small, fast, good enough for synthetic data.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `per_mille / 1000`.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    KeyAccount,
    Sme,
    Micro,
    Public,
    Export,
    Other,
}

impl Segment {
    fn name(self) -> &'static str {
        match self {
            Self::KeyAccount => "key-account",
            Self::Sme => "sme",
            Self::Micro => "micro",
            Self::Public => "public",
            Self::Export => "export",
            Self::Other => "other",
        }
    }

    /// Invoice amount range in cents.
    fn cents(self) -> (u64, u64) {
        match self {
            Self::KeyAccount => (400_000, 6_000_000),
            Self::Sme => (30_000, 900_000),
            Self::Micro => (8_000, 250_000),
            Self::Public => (80_000, 3_000_000),
            Self::Export => (100_000, 1_200_000),
            Self::Other => (8_000, 200_000),
        }
    }
}

/// What an invoice needs to know of its customer, derived from the customer's number alone
/// (so invoices never need the customers in memory).
#[derive(Debug, Clone, Copy)]
struct CustomerTraits {
    segment: Segment,
    currency: &'static str,
}

fn traits(seed: u64, k: u64) -> CustomerTraits {
    let h = mix(seed ^ mix(k.wrapping_add(0x00C0_FFEE)));
    let segment = match h % 100 {
        0..=4 => Segment::KeyAccount,
        5..=39 => Segment::Sme,
        40..=79 => Segment::Micro,
        80..=91 => Segment::Public,
        92..=96 => Segment::Export,
        _ => Segment::Other,
    };
    let currency = match (segment, (h >> 32) % 10) {
        (Segment::Export, 0..=4) => "GBP",
        (Segment::Export, 5..=7) => "USD",
        (Segment::Export, 8) => "CHF",
        _ => "EUR",
    };
    CustomerTraits { segment, currency }
}

const FAMILY: [&str; 24] = [
    "Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Leroy", "Moreau", "Simon", "Laurent",
    "Lefebvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier", "Morel", "Girard", "Mercier",
    "Dupont", "Lambert",
];
const TRADE: [&str; 12] = [
    "Boulangerie",
    "Garage",
    "Menuiserie",
    "Transports",
    "Imprimerie",
    "Pharmacie",
    "Électricité",
    "Plomberie",
    "Traiteur",
    "Charpente",
    "Informatique",
    "Maçonnerie",
];
const TOWN: [&str; 12] = [
    "Lyon",
    "Bron",
    "Annecy",
    "Valence",
    "Grenoble",
    "Chambéry",
    "Vienne",
    "Roanne",
    "Nantes",
    "Rennes",
    "Lille",
    "Reims",
];
const REGION: [&str; 8] = [
    "Auvergne-Rhône-Alpes",
    "Île-de-France",
    "Occitanie",
    "Nouvelle-Aquitaine",
    "Hauts-de-France",
    "Grand Est",
    "Bretagne",
    "Pays de la Loire",
];
const FORM: [&str; 4] = ["SARL", "SAS", "SA", "EURL"];

/// The files a portfolio is written as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Files {
    /// customers.csv, invoices.csv and payments.csv, plain fields, `\n` line ends.
    #[default]
    Csv,
    /// The same with every field quoted and `\r\n` line ends (`--quote-all`).
    QuotedCsv,
    /// customers.json, invoices.json and payments.json (`--json`).
    Json,
    /// One workbook, portfolio.xlsx, texts as inline strings (`--xlsx`).
    Xlsx,
    /// One workbook, portfolio.xlsx, texts in the shared strings table as Excel writes them
    /// (`--xlsx-shared`).
    XlsxShared,
}

impl Files {
    fn workbook(self) -> bool {
        matches!(self, Files::Xlsx | Files::XlsxShared)
    }
}

/// The shared strings of a workbook being written: each text once, in order of first use.
#[derive(Debug, Default)]
struct SharedStrings {
    index: std::collections::HashMap<String, usize>,
    list: Vec<String>,
}

impl SharedStrings {
    fn id(&mut self, text: &str) -> usize {
        if let Some(&k) = self.index.get(text) {
            return k;
        }
        self.list.push(text.to_string());
        self.index.insert(text.to_string(), self.list.len() - 1);
        self.list.len() - 1
    }
}

/// A portfolio to generate.
#[derive(Debug)]
pub struct Gen {
    invoices: u64,
    customers: u64,
    seed: u64,
    as_of: NaiveDate,
    out: PathBuf,
    files: Files,
    opaque_ids: bool,
    /// How many key accounts, and the per cent of the invoices they get (see
    /// [`Gen::key_accounts`]).
    key_accounts: (u64, u64),
    /// The workbook's shared strings, filled as its sheets are written (`--xlsx-shared`).
    shared: std::cell::RefCell<SharedStrings>,
}

impl Gen {
    /// `invoices` invoices of `customers` customers (at least 1), due around `as_of`, written
    /// to the folder `out`; the same `seed` gives the same files.
    pub fn new(invoices: u64, customers: u64, seed: u64, as_of: NaiveDate, out: PathBuf) -> Self {
        Gen {
            invoices,
            customers: customers.max(1),
            seed,
            as_of,
            out,
            files: Files::Csv,
            opaque_ids: false,
            key_accounts: (0, 0),
            shared: Default::default(),
        }
    }

    /// `share` per cent of the invoices (at most 100) go to `count` customers (at most all
    /// of them), spread evenly through the id range, instead of to customers drawn at random:
    /// key accounts with many invoices each among the small customers.
    pub fn key_accounts(mut self, count: u64, share: u64) -> Self {
        self.key_accounts = (count.min(self.customers), share.min(100));
        self
    }

    /// The number of the customer of the next invoice.
    fn customer_of_next(&self, rng: &mut Rng) -> u64 {
        match self.key_accounts {
            (count @ 1.., share) if rng.below(100) < share => {
                let j = rng.below(count);
                // The key accounts' numbers: the middles of `count` equal parts of the range.
                (2 * j + 1) * self.customers / (2 * count)
            }
            _ => rng.below(self.customers),
        }
    }

    /// The files written (see the crate's documentation).
    pub fn files(mut self, files: Files) -> Self {
        self.files = files;
        self
    }

    /// Customer ids that are CRM record ids, not in order (see the crate's documentation).
    pub fn opaque_ids(mut self, yes: bool) -> Self {
        self.opaque_ids = yes;
        self
    }

    /// Reads the options of `gen-portfolio`.
    pub fn from_args(args: &[String]) -> Result<Self, String> {
        let mut invoices = None;
        let mut customers = None;
        let mut seed = 42u64;
        let mut as_of = NaiveDate::from_ymd_opt(2026, 3, 16).ok_or("bad default date")?;
        let mut out = None;
        let (mut files, mut opaque_ids) = (None, false);
        let (mut key_accounts, mut key_share) = (None, None);
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let shape = match flag.as_str() {
                "--opaque-ids" => {
                    opaque_ids = true;
                    continue;
                }
                "--quote-all" => Some(Files::QuotedCsv),
                "--json" => Some(Files::Json),
                "--xlsx" => Some(Files::Xlsx),
                "--xlsx-shared" => Some(Files::XlsxShared),
                _ => None,
            };
            if let Some(shape) = shape {
                if files.replace(shape).is_some_and(|before| before != shape) {
                    return Err(format!(
                        "--quote-all (CSV), --json, --xlsx and --xlsx-shared are other shapes of the files: choose one\n{USAGE}"
                    ));
                }
                continue;
            }
            let value = it.next().ok_or_else(|| format!("`{flag}` needs a value\n{USAGE}"))?;
            let number = || value.replace('_', "").parse::<u64>().map_err(|_| format!("`{value}` is not a number"));
            match flag.as_str() {
                "--invoices" => invoices = Some(number()?),
                "--customers" => customers = Some(number()?),
                "--seed" => seed = number()?,
                "--key-accounts" => key_accounts = Some(number()?),
                "--key-share" => match number()? {
                    share @ 0..=100 => key_share = Some(share),
                    _ => return Err(format!("--key-share is a per cent of the invoices, 0 to 100, not `{value}`")),
                },
                "--as-of" => {
                    as_of = NaiveDate::parse_from_str(value, "%Y-%m-%d")
                        .map_err(|_| format!("`{value}` is not a date like `2026-03-16`"))?
                }
                "--out" => out = Some(PathBuf::from(value)),
                other => return Err(format!("unknown option `{other}`\n{USAGE}")),
            }
        }
        let customers = customers.ok_or(format!("--customers is required\n{USAGE}"))?;
        if customers == 0 {
            return Err("--customers must be at least 1".to_string());
        }
        let key_accounts = match (key_accounts, key_share) {
            (None, None) => (0, 0),
            (Some(count), Some(share)) if count <= customers => (count, share),
            (Some(count), Some(_)) => {
                return Err(format!("--key-accounts {count} is more than the {customers} customers"));
            }
            _ => return Err(format!("--key-accounts and --key-share go together\n{USAGE}")),
        };
        Ok(Self {
            invoices: invoices.ok_or(format!("--invoices is required\n{USAGE}"))?,
            customers,
            seed,
            as_of,
            out: out.ok_or(format!("--out is required\n{USAGE}"))?,
            files: files.unwrap_or_default(),
            opaque_ids,
            key_accounts,
            shared: Default::default(),
        })
    }

    /// The writer of the table `name` (`customers`, …): a CSV file, a JSON one, or a sheet's
    /// XML for the workbook.
    fn writer(&self, name: &str) -> Result<Lines<'_>, String> {
        let (path, shape) = match self.files {
            // A sheet's XML, put into the workbook by `run` once every sheet is written.
            Files::Xlsx | Files::XlsxShared => (
                self.out.join(format!(".{name}.sheet.xml")),
                Shape::Xlsx {
                    names: Vec::new(),
                    row: 0,
                    shared: (self.files == Files::XlsxShared).then_some(&self.shared),
                },
            ),
            Files::Json => (self.out.join(format!("{name}.json")), Shape::Json { names: Vec::new() }),
            csv => (self.out.join(format!("{name}.csv")), Shape::Csv { quote_all: csv == Files::QuotedCsv }),
        };
        File::create(&path)
            .map(|f| Lines { w: BufWriter::with_capacity(1 << 20, f), line: Vec::new(), shape, records: 0 })
            .map_err(|e| format!("cannot create `{}`: {e}", path.display()))
    }

    /// The id of customer number `k`.
    fn customer_id(&self, k: u64) -> String {
        if !self.opaque_ids {
            return format!("C{k:07}");
        }
        // `mix` is a bijection of u64: distinct numbers give distinct ids.
        const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut v = mix(k ^ 0x5EED_0001);
        let mut id = *b"001000000000000000";
        for c in id.iter_mut().skip(3).rev() {
            *c = DIGITS[(v % 62) as usize];
            v /= 62;
        }
        String::from_utf8_lossy(&id).into_owned()
    }

    /// Writes the files; a one-line summary.
    pub fn run(&self) -> Result<String, String> {
        std::fs::create_dir_all(&self.out).map_err(|e| format!("cannot create `{}`: {e}", self.out.display()))?;
        let io = |e: std::io::Error| format!("cannot write: {e}");
        self.write_customers().map_err(io)?;
        let (payments, non_eur) = self.write_invoices().map_err(io)?;
        if self.files.workbook() {
            self.workbook().map_err(io)?;
        }
        Ok(format!(
            "wrote {} customers, {} invoices ({non_eur} not in EUR), {payments} payments to {}",
            self.customers,
            self.invoices,
            self.out.display()
        ))
    }

    /// Puts the sheets written by [`Lines`] into portfolio.xlsx (and removes them).
    fn workbook(&self) -> std::io::Result<()> {
        const TABLES: [&str; 3] = ["customers", "invoices", "payments"];
        let paths = TABLES.map(|t| self.out.join(format!(".{t}.sheet.xml")));
        let mut files = Vec::new();
        for path in &paths {
            files.push(File::open(path)?);
        }
        let mut sheets: Vec<(&str, &mut dyn std::io::Read)> =
            TABLES.iter().copied().zip(files.iter_mut().map(|f| f as &mut dyn std::io::Read)).collect();
        write_workbook_with_strings(&self.out.join("portfolio.xlsx"), &mut sheets, &self.shared.borrow().list)?;
        for path in &paths {
            std::fs::remove_file(path)?;
        }
        Ok(())
    }

    fn write_customers(&self) -> std::io::Result<()> {
        let mut w = self.writer("customers").map_err(std::io::Error::other)?;
        let mut rng = Rng(self.seed ^ 0xA5A5_A5A5);
        writeln!(w, "id,name,segment,email,phone,language,tags,avg_days_late,region")?;
        for k in 0..self.customers {
            let t = traits(self.seed, k);
            let family = FAMILY[rng.below(FAMILY.len() as u64) as usize];
            let town = TOWN[rng.below(TOWN.len() as u64) as usize];
            let form = FORM[rng.below(FORM.len() as u64) as usize];
            let trade = TRADE[rng.below(TRADE.len() as u64) as usize];
            let (name, lang) = match t.segment {
                Segment::Public if rng.chance(500) => (format!("Mairie de {town}"), "fr"),
                Segment::Public => (format!("Centre hospitalier de {town}"), "fr"),
                Segment::KeyAccount => (format!("Groupe {family} {trade} {form}"), "fr"),
                Segment::Export => (format!("{family} Trading Ltd"), "en"),
                Segment::Other => (format!("Association {family} de {town}"), "fr"),
                _ => (format!("{trade} {family} {form}"), "fr"),
            };
            let tags = match rng.below(100) {
                0 => "legal-hold",
                1..=5 => "vip",
                6..=8 => "new",
                _ => "",
            };
            let region = if t.segment == Segment::Export { "Export" } else { REGION[rng.below(8) as usize] };
            write!(
                w,
                "{},{name},{},c{k}@example.fr,0{} {:02} {:02} {:02} {:02},{lang},{tags},",
                self.customer_id(k),
                t.segment.name(),
                1 + rng.below(5),
                rng.below(100),
                rng.below(100),
                rng.below(100),
                rng.below(100)
            )?;
            if rng.chance(500) {
                write!(w, "{}", rng.below(60))?;
            }
            writeln!(w, ",{region}")?;
        }
        w.finish()
    }

    /// Writes invoices.csv and payments.csv side by side; returns (payments, invoices not in EUR).
    fn write_invoices(&self) -> std::io::Result<(u64, u64)> {
        let mut w = self.writer("invoices").map_err(std::io::Error::other)?;
        let mut p = self.writer("payments").map_err(std::io::Error::other)?;
        writeln!(
            w,
            "id,customer_id,issue_date,due_date,amount,currency,outstanding,disputed,promise_date,promise_amount,terms,payment_plan,po_number"
        )?;
        writeln!(p, "id,invoice_id,date,amount,kind")?;
        // Dates as text, by offset from the as-of date: -800 ..= +200 days.
        const BACK: i64 = 800;
        let dates: Vec<String> = (-BACK..=200)
            .map(|o| {
                let d = if o < 0 {
                    self.as_of.checked_sub_days(Days::new(o.unsigned_abs()))
                } else {
                    self.as_of.checked_add_days(Days::new(o as u64))
                };
                d.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default()
            })
            .collect();
        let date = |offset: i64| dates[(offset + BACK).clamp(0, dates.len() as i64 - 1) as usize].as_str();
        let mut rng = Rng(self.seed);
        let mut payments = 0u64;
        let mut non_eur = 0u64;
        for i in 0..self.invoices {
            let k = self.customer_of_next(&mut rng);
            let t = traits(self.seed, k);
            // Due date relative to the as-of date: 15 % not yet due, 75 % up to 120 days late,
            // 10 % very late (imported for catch-up).
            let due = match rng.below(100) {
                0..=14 => 1 + rng.below(60) as i64,
                15..=89 => -(rng.below(121) as i64),
                _ => -(121 + rng.below(480) as i64),
            };
            let terms = match t.segment {
                Segment::KeyAccount => 45,
                Segment::Export => 60,
                _ if rng.chance(250) => 45,
                _ => 30,
            };
            let issue = due - terms;
            let (lo, hi) = t.segment.cents();
            let cents = lo + rng.below(hi - lo);
            if t.currency != "EUR" {
                non_eur += 1;
            }
            write!(
                w,
                "F{i:09},{},{},{},{}.{:02},{},,",
                self.customer_id(k),
                date(issue),
                date(due),
                cents / 100,
                cents % 100,
                t.currency
            )?;
            w.write_all(if rng.chance(30) { b"yes," } else { b"," })?;
            if rng.chance(30) {
                let promised = if rng.chance(500) { cents } else { cents / 2 };
                write!(w, "{},{}.{:02},", date(-10 + rng.below(31) as i64), promised / 100, promised % 100)?;
            } else {
                w.write_all(b",,")?;
            }
            write!(w, "{terms} days net,")?;
            w.write_all(if rng.chance(5) { b"yes," } else { b"," })?;
            if matches!(t.segment, Segment::KeyAccount | Segment::Public) {
                write!(w, "BC-{:06}", rng.below(1_000_000))?;
            }
            w.write_all(b"\n")?;
            // ~10 % partly paid, ~1 % with a credit note; dated between issue and as-of.
            let r = rng.below(1000);
            if r < 110 && issue < 0 {
                let part = cents * (20 + rng.below(61)) / 100;
                let when = issue + 1 + rng.below(issue.unsigned_abs()) as i64;
                let kind = if r < 100 { "payment" } else { "credit_note" };
                payments += 1;
                writeln!(p, "P{payments:09},F{i:09},{},{}.{:02},{kind}", date(when), part / 100, part % 100)?;
            }
        }
        w.finish()?;
        p.finish()?;
        Ok((payments, non_eur))
    }
}

/// A table written a line at a time (generated fields hold no comma, quote or backslash):
/// a line is gathered, then written as a CSV line (as it is, or with every field quoted and a
/// `\r\n` line end), as a JSON object named by the first line's fields, or as a row of a
/// worksheet's XML.
struct Lines<'g> {
    w: BufWriter<File>,
    line: Vec<u8>,
    shape: Shape<'g>,
    /// JSON objects written so far.
    records: u64,
}

enum Shape<'g> {
    Csv {
        quote_all: bool,
    },
    /// The names of the columns, from the header line.
    Json {
        names: Vec<String>,
    },
    /// The XML of a worksheet: the names of the columns, the rows written, and the
    /// workbook's shared strings when texts go there.
    Xlsx {
        names: Vec<String>,
        row: u64,
        shared: Option<&'g std::cell::RefCell<SharedStrings>>,
    },
}

/// Columns written as dates in a workbook.
const DATE_COLUMNS: [&str; 4] = ["issue_date", "due_date", "promise_date", "date"];

/// Columns written as numbers (their text, exact), and columns whose `yes` is `true`, in
/// JSON files and workbooks.
const NUMBER_COLUMNS: [&str; 4] = ["amount", "outstanding", "promise_amount", "avg_days_late"];
const BOOLEAN_COLUMNS: [&str; 2] = ["disputed", "payment_plan"];

impl Write for Lines<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut rest = buf;
        while let Some(end) = rest.iter().position(|&c| c == b'\n') {
            self.line.extend_from_slice(&rest[..end]);
            self.end_line()?;
            rest = &rest[end + 1..];
        }
        self.line.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

impl Lines<'_> {
    fn end_line(&mut self) -> std::io::Result<()> {
        match &mut self.shape {
            Shape::Csv { quote_all: true } => {
                for (k, field) in self.line.split(|&c| c == b',').enumerate() {
                    self.w.write_all(if k == 0 { b"\"" } else { b",\"" })?;
                    self.w.write_all(field)?;
                    self.w.write_all(b"\"")?;
                }
                self.w.write_all(b"\r\n")?;
            }
            Shape::Csv { quote_all: false } => {
                self.w.write_all(&self.line)?;
                self.w.write_all(b"\n")?;
            }
            Shape::Xlsx { names, row, shared } => {
                if *row == 0 {
                    *names = self.line.split(|&c| c == b',').map(|n| String::from_utf8_lossy(n).into_owned()).collect();
                    self.w.write_all(
                        br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#,
                    )?;
                }
                *row += 1;
                write!(self.w, "<row r=\"{row}\">")?;
                for (k, field) in self.line.split(|&c| c == b',').enumerate() {
                    if field.is_empty() {
                        continue;
                    }
                    let name = names.get(k).map(String::as_str).unwrap_or_default();
                    let text = String::from_utf8_lossy(field);
                    let at = format!("{}{row}", (b'A' + k as u8) as char);
                    let is_text = *row == 1
                        || !(NUMBER_COLUMNS.contains(&name)
                            || BOOLEAN_COLUMNS.contains(&name)
                            || DATE_COLUMNS.contains(&name) && excel_serial(&text).is_some());
                    if let (true, Some(shared)) = (is_text, *shared) {
                        write!(self.w, r#"<c r="{at}" t="s"><v>{}</v></c>"#, shared.borrow_mut().id(&text))?;
                    } else if *row == 1 {
                        write!(self.w, r#"<c r="{at}" t="inlineStr"><is><t>{}</t></is></c>"#, xml_escape(&text))?;
                    } else if NUMBER_COLUMNS.contains(&name) {
                        write!(self.w, r#"<c r="{at}"><v>{text}</v></c>"#)?;
                    } else if BOOLEAN_COLUMNS.contains(&name) {
                        write!(self.w, r#"<c r="{at}" t="b"><v>{}</v></c>"#, u8::from(field == b"yes"))?;
                    } else if let Some(serial) = DATE_COLUMNS.contains(&name).then(|| excel_serial(&text)).flatten() {
                        write!(self.w, r#"<c r="{at}" s="1"><v>{serial}</v></c>"#)?;
                    } else {
                        write!(self.w, r#"<c r="{at}" t="inlineStr"><is><t>{}</t></is></c>"#, xml_escape(&text))?;
                    }
                }
                self.w.write_all(b"</row>")?;
            }
            Shape::Json { names } if names.is_empty() => {
                *names = self.line.split(|&c| c == b',').map(|n| String::from_utf8_lossy(n).into_owned()).collect();
                self.w.write_all(b"[\n")?;
            }
            Shape::Json { names } => {
                self.w.write_all(if self.records == 0 { b"{" } else { b",\n{" })?;
                let mut first = true;
                for (name, field) in names.iter().zip(self.line.split(|&c| c == b',')) {
                    if field.is_empty() {
                        continue;
                    }
                    self.w.write_all(if first { b"\"" } else { b",\"" })?;
                    first = false;
                    self.w.write_all(name.as_bytes())?;
                    self.w.write_all(b"\":")?;
                    if NUMBER_COLUMNS.contains(&name.as_str()) {
                        self.w.write_all(field)?;
                    } else if BOOLEAN_COLUMNS.contains(&name.as_str()) {
                        self.w.write_all(if field == b"yes" { b"true" } else { b"false" })?;
                    } else {
                        self.w.write_all(b"\"")?;
                        self.w.write_all(field)?;
                        self.w.write_all(b"\"")?;
                    }
                }
                self.w.write_all(b"}")?;
                self.records += 1;
            }
        }
        self.line.clear();
        Ok(())
    }

    /// Writes the last line and what ends the file.
    fn finish(&mut self) -> std::io::Result<()> {
        if !self.line.is_empty() {
            self.end_line()?;
        }
        match self.shape {
            Shape::Json { .. } => self.w.write_all(b"\n]\n")?,
            Shape::Xlsx { .. } => self.w.write_all(b"</sheetData></worksheet>")?,
            Shape::Csv { .. } => {}
        }
        self.w.flush()
    }
}

/// `text` with the characters XML reserves escaped.
fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The serial number of a `yyyy-mm-dd` date in a workbook: days since 1899-12-30.
fn excel_serial(text: &str) -> Option<i64> {
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some((date - NaiveDate::from_ymd_opt(1899, 12, 30)?).num_days())
}

/// Writes an Excel workbook at `path` with `sheets`, each a name and the XML of a worksheet
/// (`<worksheet …><sheetData>…</sheetData></worksheet>`); style 1 is a date format. For the
/// generator's `--xlsx` and for tests that need a workbook written a given way.
pub fn write_workbook(path: &std::path::Path, sheets: &mut [(&str, &mut dyn std::io::Read)]) -> std::io::Result<()> {
    write_workbook_with_strings(path, sheets, &[])
}

/// [`write_workbook`] with a shared strings table (`xl/sharedStrings.xml`, left out when
/// `strings` is empty), which cells of type `s` point into by number.
pub fn write_workbook_with_strings(
    path: &std::path::Path,
    sheets: &mut [(&str, &mut dyn std::io::Read)],
    strings: &[String],
) -> std::io::Result<()> {
    use zip::write::SimpleFileOptions;
    let mut zip = zip::ZipWriter::new(BufWriter::new(File::create(path)?));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let put = |zip: &mut zip::ZipWriter<BufWriter<File>>, name: &str, text: &str| -> std::io::Result<()> {
        zip.start_file(name, options).map_err(std::io::Error::other)?;
        zip.write_all(text.as_bytes())
    };
    let each = |f: &dyn Fn(usize, &str) -> String| {
        sheets.iter().enumerate().map(|(k, (name, _))| f(k + 1, name)).collect::<String>()
    };
    put(
        &mut zip,
        "[Content_Types].xml",
        &format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>{}</Types>"#,
            each(&|k, _| format!(
                r#"<Override PartName="/xl/worksheets/sheet{k}.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>"#
            ))
        ),
    )?;
    put(
        &mut zip,
        "_rels/.rels",
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
    )?;
    put(
        &mut zip,
        "xl/workbook.xml",
        &format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>{}</sheets></workbook>"#,
            each(&|k, t| format!(r#"<sheet name="{t}" sheetId="{k}" r:id="rId{k}"/>"#))
        ),
    )?;
    put(
        &mut zip,
        "xl/_rels/workbook.xml.rels",
        &format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{}<Relationship Id="rIdStyles" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>{}</Relationships>"#,
            each(&|k, _| format!(
                r#"<Relationship Id="rId{k}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet{k}.xml"/>"#
            )),
            if strings.is_empty() {
                ""
            } else {
                r#"<Relationship Id="rIdStrings" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>"#
            }
        ),
    )?;
    // Style 1: the date format 14 (the locale's short date), for the date cells.
    put(
        &mut zip,
        "xl/styles.xml",
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts><fills count="1"><fill><patternFill patternType="none"/></fill></fills><borders count="1"><border/></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs><cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/><xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs></styleSheet>"#,
    )?;
    if !strings.is_empty() {
        zip.start_file("xl/sharedStrings.xml", options).map_err(std::io::Error::other)?;
        let mut w = BufWriter::new(&mut zip);
        write!(
            w,
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="{n}" uniqueCount="{n}">"#,
            n = strings.len()
        )?;
        for text in strings {
            let space = if text.trim() != text { r#" xml:space="preserve""# } else { "" };
            write!(w, "<si><t{space}>{}</t></si>", xml_escape(text))?;
        }
        w.write_all(b"</sst>")?;
        w.flush()?;
    }
    for (k, (_, sheet)) in sheets.iter_mut().enumerate() {
        zip.start_file(format!("xl/worksheets/sheet{}.xml", k + 1), options).map_err(std::io::Error::other)?;
        std::io::copy(sheet, &mut zip)?;
    }
    zip.finish().map_err(std::io::Error::other)?.flush()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn generator(dir: &std::path::Path, seed: u64) -> Gen {
        Gen {
            invoices: 2000,
            customers: 300,
            seed,
            as_of: NaiveDate::from_ymd_opt(2026, 3, 16).unwrap(),
            out: dir.to_path_buf(),
            files: Files::Csv,
            opaque_ids: false,
            key_accounts: (0, 0),
            shared: Default::default(),
        }
    }

    #[test]
    fn other_shapes_are_the_same_portfolio_written_otherwise() {
        let base = std::env::temp_dir().join(format!("xtask-shapes-{}", std::process::id()));
        let read = |d: &std::path::Path, f: &str| std::fs::read_to_string(d.join(f)).unwrap();
        generator(&base.join("plain"), 7).run().unwrap();
        generator(&base.join("crm"), 7).files(Files::QuotedCsv).opaque_ids(true).run().unwrap();
        let (plain, crm) = (base.join("plain"), base.join("crm"));
        // Unquoted, with the ids mapped back, the files are the same.
        let ids: std::collections::HashMap<String, String> = read(&crm, "customers.csv")
            .lines()
            .skip(1)
            .zip(read(&plain, "customers.csv").lines().skip(1))
            .map(|(c, p)| {
                (
                    format!("\"{}\"", c.split(',').next().unwrap().trim_matches('"')),
                    p.split(',').next().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(ids.len(), 300, "customer ids are distinct");
        for f in ["customers.csv", "invoices.csv", "payments.csv"] {
            let crm = read(&crm, f);
            assert!(crm.ends_with("\"\r\n"), "{f}");
            let unquoted: Vec<String> = crm
                .lines()
                .map(|l| {
                    l.split(',')
                        .map(|c| ids.get(c).cloned().unwrap_or_else(|| c.trim_matches('"').to_string()))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .collect();
            assert_eq!(unquoted, read(&plain, f).lines().collect::<Vec<_>>(), "{f}");
        }
        let first = read(&crm, "customers.csv").lines().nth(1).unwrap().to_string();
        assert!(first.starts_with("\"001") && first.split(',').next().unwrap().len() == 20, "{first}");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn same_seed_same_files_other_seed_other_files() {
        let base = std::env::temp_dir().join(format!("xtask-gen-{}", std::process::id()));
        let read = |d: &std::path::Path| {
            ["customers.csv", "invoices.csv", "payments.csv"].map(|f| std::fs::read(d.join(f)).unwrap())
        };
        generator(&base.join("a"), 7).run().unwrap();
        generator(&base.join("b"), 7).run().unwrap();
        generator(&base.join("c"), 8).run().unwrap();
        let (a, b, c) = (read(&base.join("a")), read(&base.join("b")), read(&base.join("c")));
        assert_eq!(a, b);
        assert_ne!(a[1], c[1]);
        let invoices = String::from_utf8(a[1].clone()).unwrap();
        assert_eq!(invoices.lines().count(), 2001);
        let eur = invoices.lines().skip(1).filter(|l| l.contains(",EUR,")).count();
        assert!((1800..2000).contains(&eur), "{eur} invoices in EUR");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn json_and_xlsx_are_options_of_their_own() {
        let args = |a: &str| a.split(' ').map(String::from).collect::<Vec<_>>();
        let g = Gen::from_args(&args("--invoices 10 --customers 2 --json --opaque-ids --out x")).unwrap();
        assert!(g.files == Files::Json && g.opaque_ids);
        let e = Gen::from_args(&args("--invoices 10 --customers 2 --json --quote-all --out x")).unwrap_err();
        assert!(e.starts_with("--quote-all (CSV), --json, --xlsx and --xlsx-shared are other shapes"), "{e}");
        assert!(Gen::from_args(&args("--invoices 10 --customers 2 --xlsx --json --out x")).is_err());
        assert_eq!(Gen::from_args(&args("--invoices 10 --customers 2 --xlsx --out x")).unwrap().files, Files::Xlsx);
        let shared = Gen::from_args(&args("--invoices 10 --customers 2 --xlsx-shared --out x")).unwrap();
        assert_eq!(shared.files, Files::XlsxShared);
        assert!(Gen::from_args(&args("--invoices 10 --customers 2 --xlsx-shared --xlsx --out x")).is_err());
    }

    #[test]
    fn key_accounts_get_their_share_of_the_invoices_spread_through_the_ids() {
        let base = std::env::temp_dir().join(format!("xtask-keys-{}", std::process::id()));
        generator(&base, 7).key_accounts(4, 60).run().unwrap();
        let invoices = std::fs::read_to_string(base.join("invoices.csv")).unwrap();
        let mut per_customer: std::collections::BTreeMap<&str, usize> = Default::default();
        for line in invoices.lines().skip(1) {
            *per_customer.entry(line.split(',').nth(1).unwrap()).or_default() += 1;
        }
        let mut counts: Vec<(usize, &str)> = per_customer.iter().map(|(&c, &n)| (n, c)).collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        // 60 % of 2,000 invoices to 4 customers (300 each, give or take), the middles of four
        // equal parts of the 300 customers' numbers; the others have a few each.
        let mut keys: Vec<&str> = counts.iter().take(4).map(|&(_, c)| c).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["C0000037", "C0000112", "C0000187", "C0000262"]);
        let to_keys: usize = counts.iter().take(4).map(|&(n, _)| n).sum();
        assert!((1100..1300).contains(&to_keys), "{to_keys} invoices to the key accounts");
        assert!(counts[4].0 < 20, "{:?}", counts[4]);
        std::fs::remove_dir_all(&base).unwrap();
        let args = |a: &str| a.split(' ').map(String::from).collect::<Vec<_>>();
        let g = Gen::from_args(&args("--invoices 10 --customers 5 --key-accounts 2 --key-share 30 --out x")).unwrap();
        assert_eq!(g.key_accounts, (2, 30));
        for wrong in [
            "--key-accounts 2",
            "--key-share 30",
            "--key-accounts 6 --key-share 30",
            "--key-accounts 2 --key-share 101",
        ] {
            assert!(Gen::from_args(&args(&format!("--invoices 10 --customers 5 {wrong} --out x"))).is_err(), "{wrong}");
        }
    }

    #[test]
    fn rng_below_stays_in_range() {
        let mut r = Rng(1);
        for n in [1u64, 2, 7, 1000] {
            for _ in 0..1000 {
                assert!(r.below(n) < n);
            }
        }
    }
}
