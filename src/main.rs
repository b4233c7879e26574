//! The `fusebox` command line: evaluate a numexpr-syntax expression over `.npy` files, run the
//! seed's demo (fused vs unfused timings), list devices.
//!
//! Contract (outside checks rely on it): errors print ONE line `error: <message>` on stderr and
//! exit with status 1; usage errors exit with 2 (clap).
use clap::{Parser, Subcommand};
use fusebox::npy::{read_npy, write_npy};
use fusebox::parse::{names, parse, CONSTANT_NAMES};
use fusebox::ExprKind;
use fusebox::{Device, InvalidCast, Options, Session};
use fusebox::{DynArray, Error, Expr, Result};
use ndarray::Array1;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "fusebox",
    version,
    about = "Fused array expressions over .npy files"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Evaluate EXPR (numexpr syntax) with NAME=VALUE bindings (VALUE: a .npy path or a number).
    Eval(EvalArgs),
    /// Run the seed's examples and compare fused with unfused execution.
    Demo {
        /// Number of elements of the large examples.
        #[arg(long, default_value_t = 10_000_000)]
        n: usize,
    },
    /// Print a table file's schema, row count and first rows (Parquet, Arrow IPC, CSV, .npz).
    Show {
        /// The file; its format by extension.
        path: PathBuf,
    },
    /// List the CPU and GPU devices fusebox can use.
    Devices,
    /// Time the benchmark matrix (fused, unfused, ndarray eager and Zip, copy baseline).
    Bench(BenchArgs),
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Cases to run (comma-separated): copy, add1, poly, gauss, sumsq, two, rowbcast, colbcast,
    /// softmax, standardize, gauss32, relu_mix, add_u8. Default: all.
    #[arg(long = "case", value_delimiter = ',')]
    cases: Vec<String>,
    /// Sizes (comma-separated; `1e7` notation accepted). Default: 1e3 to 1e7 by powers of ten.
    #[arg(long = "sizes", alias = "n", value_delimiter = ',', value_parser = parse_size)]
    sizes: Vec<usize>,
    /// Device for fusebox's implementations (fused, unfused, copy): cpu or gpu[:N].
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Implementations (comma-separated): fused, fused-into, kernels-into (fused-into without
    /// the row form), unfused, ndarray-eager, ndarray-zip, copy, copy-into.
    #[arg(long = "impl", value_delimiter = ',')]
    impls: Vec<String>,
    /// CPU threads for fusebox (0 = all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Wall-time budget per (case, size) in milliseconds.
    #[arg(long, default_value_t = 1500)]
    budget_ms: u64,
    /// One JSON array of records `{case, n, impl, device, threads, median_s, bytes, gbps}`
    /// instead of the table.
    #[arg(long)]
    json: bool,
    /// Validate placement: the fused implementation on cpu, on the GPU (`--device gpu:N`
    /// picks it) and on auto, with auto's regret per size (`--json`: records with `device`
    /// cpu/gpu/auto, and `chosen` on auto's).
    #[arg(long)]
    placement: bool,
}

/// A size like `1000`, `1e7` or `1_000_000`.
fn parse_size(s: &str) -> std::result::Result<usize, String> {
    let t = s.replace('_', "");
    if let Ok(n) = t.parse::<usize>() {
        return Ok(n);
    }
    match t.parse::<f64>() {
        Ok(f) if f >= 0.0 && f.fract() == 0.0 && f < 1e15 => Ok(f as usize),
        _ => Err(format!("`{s}` is not a size")),
    }
}

#[derive(clap::Args)]
struct EvalArgs {
    /// The expression, e.g. '(5.0*x + 4.0)*x + 1.0'.
    #[arg(allow_hyphen_values = true)]
    expr: String,
    /// NAME=VALUE bindings; VALUE is a .npy file or a number literal.
    #[arg(value_parser = parse_binding)]
    bindings: Vec<(String, String)>,
    /// Write the result to this .npy file instead of printing it (with --table: .parquet,
    /// .arrow, .arrows, .csv or .npy, by extension).
    #[arg(short = 'o', long = "out")]
    out: Option<PathBuf>,
    /// Evaluate over the columns of this table file (Parquet, Arrow IPC, CSV, .npz): names in
    /// EXPR are its columns. Several `;`-separated expressions share passes over the file.
    #[arg(long)]
    table: Option<PathBuf>,
    /// With --table: keep the rows where this predicate is true.
    #[arg(long, requires = "table", allow_hyphen_values = true)]
    filter: Option<String>,
    /// Where to run: auto, cpu, gpu (or gpu:N), reference.
    #[arg(long, default_value = "auto", value_parser = parse_device)]
    device: Device,
    /// Run every operation as its own pass (no fusion, no rewrites).
    #[arg(long)]
    no_optimize: bool,
    /// Print the plan (kernels, bytes moved, device) before the result.
    #[arg(long)]
    explain: bool,
    /// Print the result (and the plan, with --explain) as one JSON object.
    #[arg(long)]
    json: bool,
    /// Print the session's counters (kernels, bytes read and written, bytes uploaded to and
    /// downloaded from the GPU, ...) as one JSON object on a line of their own after the
    /// result (with --json: as its `stats` field).
    #[arg(long)]
    stats: bool,
    /// What a float -> int cast does with NaN, infinities and out-of-range values: `min-int`
    /// (NumPy's value on x86-64) or `raise` (an error, like `np.errstate(invalid='raise')`).
    #[arg(long, default_value = "min-int", value_parser = parse_invalid_cast)]
    invalid_cast: InvalidCast,
}

fn parse_invalid_cast(s: &str) -> std::result::Result<InvalidCast, String> {
    match s {
        "min-int" => Ok(InvalidCast::MinInt),
        "raise" => Ok(InvalidCast::Raise),
        _ => Err(format!("`{s}`: expected min-int or raise")),
    }
}

fn parse_binding(s: &str) -> std::result::Result<(String, String), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got `{s}`"))?;
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_alphanumeric() || c == '_');
    if !ok {
        return Err(format!("`{name}` is not a valid name"));
    }
    Ok((name.to_string(), value.to_string()))
}

fn parse_device(s: &str) -> std::result::Result<Device, String> {
    Device::parse(s).map_err(|e| e.to_string())
}

/// On a headless machine (no `XDG_RUNTIME_DIR`), Mesa's implicit Vulkan layer
/// `VK_LAYER_MESA_device_select` tries to reach a Wayland display whenever wgpu creates a
/// Vulkan instance, and libwayland prints `error: XDG_RUNTIME_DIR is invalid or not set in the
/// environment.` twice on stderr (GL is never probed where Vulkan exists: `gpu/adapter.rs`).
/// The layer only reorders adapters, which fusebox sorts itself, so the CLI turns it off with
/// the layer's own switch, `NODEVICE_SELECT=1`, unless the user set it. Library users on such
/// machines can set the variable themselves (the library cannot: changing the environment of
/// a process whose other threads may read it is unsound).
fn quiet_headless_vulkan() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none()
        && std::env::var_os("NODEVICE_SELECT").is_none()
    {
        // Sound: called first thing in `main`, before any thread exists that could read the
        // environment concurrently.
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}

fn main() -> ExitCode {
    quiet_headless_vulkan();
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Eval(args) => eval(&args),
        Cmd::Demo { n } => demo(n),
        Cmd::Show { path } => show(&path),
        Cmd::Devices => {
            devices();
            Ok(())
        }
        Cmd::Bench(args) => bench(&args),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the message holds.
            let msg = e.to_string().replace('\n', " ");
            eprintln!("error: {msg}");
            ExitCode::from(1)
        }
    }
}

// ---- eval -------------------------------------------------------------------------------

/// A binding's value: a number literal (weak, like a Python number) or a `.npy` file (strong,
/// even when 0-d, as in NumPy).
fn bind_value(name: &str, value: &str) -> Result<Expr> {
    if let Ok(e) = parse(value, &|_| None) {
        if matches!(e.kind(), ExprKind::Literal(_)) {
            return Ok(e);
        }
    }
    let array = read_npy(std::path::Path::new(value))?;
    Ok(Expr::data(array, Some(name)))
}

fn eval(args: &EvalArgs) -> Result<()> {
    if let Some(path) = &args.table {
        return eval_table(args, path);
    }
    // Only the names the expression uses are loaded (and `pi`, `e`, ... when the user binds
    // them: a binding wins over the constant). The first binding of a name wins.
    let mut used = Vec::new();
    let mut offset = 0;
    for part in args.expr.split(';') {
        used.extend(names(part).map_err(|e| shift_column(e, offset))?);
        offset += part.chars().count() + 1;
    }
    let mut bound: HashMap<String, Expr> = HashMap::new();
    for (name, value) in &args.bindings {
        let wanted = used.contains(name) || CONSTANT_NAMES.contains(&name.as_str());
        if wanted && !bound.contains_key(name) {
            bound.insert(name.clone(), bind_value(name, value)?);
        }
    }
    // Several expressions separated by `;` are computed together (`compute_many`): what they
    // share is computed once and passes over the same data are fused.
    let mut given: Vec<String> = vec![];
    for (name, _) in &args.bindings {
        if !given.contains(name) {
            given.push(name.clone());
        }
    }
    let mut exprs = Vec::new();
    let mut offset = 0;
    for part in args.expr.split(';') {
        let e = parse(part, &|n| bound.get(n).cloned())
            .map_err(|e| with_known(shift_column(e, offset), &given))?;
        exprs.push(e);
        offset += part.chars().count() + 1;
    }
    if exprs.len() > 1 && args.out.is_some() {
        return Err(Error::Argument {
            message: "-o writes one array: give one expression, not several separated by `;`"
                .into(),
        });
    }
    let session = Session::with_options(
        Options::default()
            .with_device(args.device)
            .with_optimize(!args.no_optimize)
            .with_invalid_cast(args.invalid_cast),
    );
    let explain = if args.explain {
        Some(session.explain_many_with(&exprs, &[])?)
    } else {
        None
    };
    if let (Some(ex), false) = (&explain, args.json) {
        println!("{ex:#}");
    }
    let results = session.compute_many(&exprs)?;
    if let Some(out) = &args.out {
        write_npy(out, &results[0])?;
    }
    if args.json {
        let fields_of = |result: &DynArray| {
            let mut fields = vec![
                format!("\"shape\": {:?}", result.shape()),
                format!("\"dtype\": \"{}\"", result.dtype()),
            ];
            match &args.out {
                Some(out) => fields.push(format!(
                    "\"out\": {}",
                    json_string(&out.display().to_string())
                )),
                None => fields.push(format!("\"data\": {}", json_values(result))),
            }
            fields
        };
        let mut fields = if results.len() == 1 {
            fields_of(&results[0])
        } else {
            let each: Vec<String> = results
                .iter()
                .map(|r| format!("{{{}}}", fields_of(r).join(", ")))
                .collect();
            vec![format!("\"results\": [{}]", each.join(", "))]
        };
        if let Some(ex) = &explain {
            fields.push(format!("\"explain\": {}", ex.to_json()));
        }
        if args.stats {
            fields.push(format!("\"stats\": {}", session.stats().to_json()));
        }
        println!("{{{}}}", fields.join(", "));
    } else if let Some(out) = &args.out {
        eprintln!(
            "wrote {}: shape {}, dtype {}",
            out.display(),
            shape_text(results[0].shape()),
            results[0].dtype()
        );
    } else if results.len() == 1 {
        print_summary(&results[0]);
    } else {
        for (i, (e, r)) in exprs.iter().zip(&results).enumerate() {
            if i > 0 {
                println!();
            }
            println!("{e}");
            print_summary(r);
        }
    }
    if args.stats && !args.json {
        println!("{}", session.stats().to_json());
    }
    Ok(())
}

// ---- tables -----------------------------------------------------------------------------

fn show(path: &std::path::Path) -> Result<()> {
    let t = fusebox::table::Table::open(path)?;
    print!("{t}");
    Ok(())
}

/// `eval --table`: the expressions over the table's columns, in one plan.
fn eval_table(args: &EvalArgs, path: &std::path::Path) -> Result<()> {
    let session = Session::with_options(
        Options::default()
            .with_device(args.device)
            .with_optimize(!args.no_optimize)
            .with_invalid_cast(args.invalid_cast),
    );
    let mut t = fusebox::table::Table::open(path)?.with_session(&session);
    let names = t.column_names();
    // A column that exists but is not computed (a string) reports its own error.
    let lookup = |t: &fusebox::table::Table, src: &str, offset: usize| {
        let refused = std::cell::RefCell::new(None);
        let parsed = parse(src, &|n| match t.col(n) {
            Ok(e) => Some(e),
            Err(e) => {
                if names.iter().any(|c| c == n) {
                    refused.borrow_mut().get_or_insert(e);
                }
                None
            }
        });
        let refused = refused.into_inner();
        parsed.map_err(|e| match (e, refused) {
            (Error::UnknownName { .. }, Some(r)) => r,
            (e, _) => with_known(shift_column(e, offset), &names),
        })
    };
    if let Some(f) = &args.filter {
        let p = lookup(&t, f, 0)?;
        t = t.filter(&p)?;
    }
    let mut exprs = vec![];
    let mut offset = 0;
    for part in args.expr.split(';') {
        exprs.push(lookup(&t, part, offset)?);
        offset += part.chars().count() + 1;
    }
    let is_npy = |p: &std::path::Path| p.extension().is_some_and(|e| e == "npy");
    match &args.out {
        Some(out) if !is_npy(out) => {
            // Element-wise results stream to the file, one column per expression.
            let mut derived = t.clone();
            let mut cols = vec![];
            for (i, e) in exprs.iter().enumerate() {
                let name = if exprs.len() == 1 {
                    "result".to_string()
                } else {
                    format!("result{i}")
                };
                derived = derived.with_column(&name, e)?;
                cols.push(name);
            }
            let refs: Vec<&str> = cols.iter().map(String::as_str).collect();
            derived.select(&refs)?.write(out)?;
            eprintln!("wrote {}", out.display());
        }
        out => {
            let results = t.compute_many(&exprs)?;
            if let Some(out) = out {
                if results.len() > 1 {
                    return Err(Error::Argument {
                        message: "a .npy file holds one result: give one expression".into(),
                    });
                }
                results[0].write_npy(out, None)?;
                eprintln!("wrote {}", out.display());
                return Ok(());
            }
            for (i, (e, r)) in exprs.iter().zip(&results).enumerate() {
                if results.len() > 1 {
                    if i > 0 {
                        println!();
                    }
                    println!("{e}");
                }
                if r.values().ndim() == 0 {
                    match r.is_null(0) {
                        true => println!("null"),
                        false => println!("{}", r.values()),
                    }
                } else {
                    println!("rows: {}, nulls: {}", r.len(), r.null_count());
                    println!("dtype: {}", r.values().dtype());
                    println!("{}", r.values());
                }
            }
        }
    }
    Ok(())
}

/// A parse error in the `;`-separated part starting at character `offset`, with its column
/// counted from the start of the whole argument.
fn shift_column(e: Error, offset: usize) -> Error {
    match e {
        Error::Parse { column, message } => Error::Parse {
            column: column + offset,
            message,
        },
        e => e,
    }
}

/// An unknown name, with the names the command line binds.
fn with_known(e: Error, given: &[String]) -> Error {
    match e {
        Error::UnknownName { name, known } if known.is_empty() => Error::UnknownName {
            name,
            known: given.to_vec(),
        },
        e => e,
    }
}

/// NumPy's tuple notation: `()`, `(3,)`, `(2, 3)`.
fn shape_text(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn print_summary(a: &DynArray) {
    println!("shape: {}", shape_text(a.shape()));
    println!("dtype: {}", a.dtype());
    println!("{a}");
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// All values, flat in C order. Non-finite floats are written as Python's `json` module writes
/// them (`NaN`, `Infinity`, `-Infinity`).
fn json_values(a: &DynArray) -> String {
    fn float(x: f64) -> String {
        if x.is_nan() {
            "NaN".into()
        } else if x.is_infinite() {
            if x > 0.0 {
                "Infinity".into()
            } else {
                "-Infinity".into()
            }
        } else {
            format!("{x:?}")
        }
    }
    let items: Vec<String> = match a {
        DynArray::Bool(x) => x.iter().map(|v| v.to_string()).collect(),
        DynArray::I32(x) => x.iter().map(|v| v.to_string()).collect(),
        DynArray::I64(x) => x.iter().map(|v| v.to_string()).collect(),
        DynArray::I8(x) => x.iter().map(|v| v.to_string()).collect(),
        DynArray::I16(x) => x.iter().map(|v| v.to_string()).collect(),
        DynArray::U8(x) => x.iter().map(|v| v.to_string()).collect(),
        DynArray::U16(x) => x.iter().map(|v| v.to_string()).collect(),
        DynArray::U32(x) => x.iter().map(|v| v.to_string()).collect(),
        DynArray::U64(x) => x.iter().map(|v| v.to_string()).collect(),
        DynArray::F16(x) => x.iter().map(|v| float(v.to_f64())).collect(),
        DynArray::F32(x) => x.iter().map(|v| float(*v as f64)).collect(),
        DynArray::F64(x) => x.iter().map(|v| float(*v)).collect(),
    };
    format!("[{}]", items.join(", "))
}

// ---- demo -------------------------------------------------------------------------------

fn demo(n: usize) -> Result<()> {
    let x: DynArray = Array1::from_iter((0..n).map(|i| i as f64)).into();
    let grid: DynArray = Array1::linspace(-5.0, 5.0, n).into();
    let small: DynArray = Array1::from_vec(vec![1i64, 2, 3]).into();
    /// Title, expression, the data bound to `x`, and the scalar constants.
    type Example = (
        &'static str,
        &'static str,
        DynArray,
        Vec<(&'static str, f64)>,
    );
    let examples: [Example; 3] = [
        ("polynomial", "(5.0*x + 4.0)*x + 1.0", x, vec![]),
        (
            "Gaussian",
            "1/(sigma*sqrt(2*pi)) * exp(-(x-mu)**2/(2*sigma**2))",
            grid,
            vec![("mu", -1.33), ("sigma", 1.25)],
        ),
        ("sum (data.a.sum())", "sum(x)", small, vec![]),
    ];
    let fused = Session::new();
    let unfused = Session::with_options(Options::default().with_optimize(false));
    for (title, src, data, consts) in examples {
        let data = Expr::data(data, Some("x"));
        let expr = parse(src, &|name| {
            if name == "x" {
                return Some(data.clone());
            }
            consts
                .iter()
                .find(|(c, _)| *c == name)
                .map(|(_, v)| Expr::from(*v))
        })?;
        println!("== {title}: {src}");
        let result = fused.compute(&expr)?;
        println!(
            "result: shape {}, dtype {}",
            shape_text(result.shape()),
            result.dtype()
        );
        println!("{result}");
        let plan = fused.explain(&expr)?;
        println!("{plan}");
        let t_fused = median_time(|| fused.compute(&expr).map(drop))?;
        let t_unfused = median_time(|| unfused.compute(&expr).map(drop))?;
        let speedup = t_unfused.as_secs_f64() / t_fused.as_secs_f64().max(1e-12);
        println!(
            "fused: {:.3} ms, unfused: {:.3} ms, speedup {speedup:.2}x (median of 3 after a warm-up)",
            t_fused.as_secs_f64() * 1e3,
            t_unfused.as_secs_f64() * 1e3,
        );
        println!(
            "bytes moved: fused {} vs unfused {}",
            plan.bytes_fused, plan.bytes_unfused
        );
        println!();
    }
    Ok(())
}

/// Median of 3 timed runs after one warm-up run.
fn median_time(mut f: impl FnMut() -> Result<()>) -> Result<Duration> {
    f()?;
    let mut times = Vec::with_capacity(3);
    for _ in 0..3 {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(times[1])
}

// ---- bench ------------------------------------------------------------------------------

fn bench(args: &BenchArgs) -> Result<()> {
    use fusebox::unstable::bench::{self, Config, CASES, IMPLS};
    let mut cfg = Config {
        device: Device::parse(&args.device)?,
        threads: args.threads,
        budget: Duration::from_millis(args.budget_ms),
        ..Config::default()
    };
    for c in &args.cases {
        if !CASES.contains(&c.as_str()) {
            return Err(Error::Argument {
                message: format!("unknown bench case `{c}` (one of {})", CASES.join(", ")),
            });
        }
    }
    for i in &args.impls {
        if !IMPLS.contains(&i.as_str()) {
            return Err(Error::Argument {
                message: format!("unknown implementation `{i}` (one of {})", IMPLS.join(", ")),
            });
        }
    }
    if !args.cases.is_empty() {
        cfg.cases = args.cases.clone();
    }
    if !args.sizes.is_empty() {
        cfg.sizes = args.sizes.clone();
    }
    if !args.impls.is_empty() {
        cfg.impls = args.impls.clone();
    }
    if args.placement {
        let gpu = match cfg.device {
            Device::Gpu(n) => n,
            _ => 0,
        };
        let records = bench::run_placement(&cfg, gpu)?;
        if args.json {
            let all: Vec<serde_json::Value> = records.iter().map(|r| r.to_json()).collect();
            println!("{}", serde_json::Value::Array(all));
        } else {
            print!("{}", bench::placement_table(&records));
        }
        return Ok(());
    }
    let records = bench::run(&cfg)?;
    if args.json {
        let all: Vec<serde_json::Value> = records.iter().map(|r| r.to_json()).collect();
        println!("{}", serde_json::Value::Array(all));
    } else {
        print!("{}", bench::table(&records));
    }
    Ok(())
}

// ---- devices ----------------------------------------------------------------------------

fn devices() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("CPU: {cores} cores, SIMD width 128-bit (Cranelift)");
    match cranelift_native::builder() {
        Ok(b) => println!("  JIT target: {}", b.triple()),
        Err(e) => println!("  JIT target: unavailable ({e})"),
    }
    let gpus = fusebox::unstable::gpu::adapters();
    if gpus.is_empty() {
        println!("GPU: no adapter found (on headless Linux: apt-get install mesa-vulkan-drivers libvulkan1)");
    }
    for a in gpus {
        println!(
            "GPU {}: {} ({}, {}), f64: {}, i64: {}, subgroups: {}, max binding {} MiB, fast-math barriers: {}",
            a.index,
            a.name,
            a.backend,
            a.device_type,
            if a.f64 { "yes" } else { "no" },
            if a.i64 { "yes" } else { "no" },
            if a.subgroups { "yes" } else { "no" },
            a.max_binding_size >> 20,
            if a.fast_math_barriers {
                "all float ops (Mesa)"
            } else {
                "products only"
            }
        );
    }
}
