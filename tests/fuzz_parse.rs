//! Fuzzing the two readers of untrusted text and bytes: the expression parser
//! (`fusebox::parse`) and the `.npy` reader (`fusebox::npy`). Properties:
//! - no panic (proptest fails the case on one), no stack overflow (the process would abort):
//!   nesting is capped with `Error::TooDeep`;
//! - every failure is a typed error of the kind the input calls for;
//! - no unbounded allocation: this binary's global allocator records the largest single
//!   request, and a hostile `.npy` header (claiming a huge shape) must be refused without any
//!   request larger than [`ALLOC_LIMIT`];
//! - parsed expressions that compute agree with the reference evaluator (a small differential
//!   test driven by the grammar).
//!
//! Cases: `FUSEBOX_FUZZ_CASES` per property (default [`DEFAULT_CASES`]), or
//! `FUSEBOX_FUZZ_SECONDS=600` to run each property for that long. cargo-fuzz is not installed
//! on the build machines, so proptest is the fuzzer: its strategies give both arbitrary input
//! and grammar-shaped input.
//!
//! Recorded long run (2026-11-24, dev profile, shared 2-core machine):
//! `FUSEBOX_FUZZ_SECONDS=600 cargo test --test fuzz_parse -- --nocapture`, no failure:
//! npy arbitrary bytes 15,632,000 cases / 600 s; npy magic + arbitrary bytes 10,158,000 / 600 s;
//! npy hostile headers 9,148,000 / 600 s; npy corrupted files 9,774,000 / 600 s; parser
//! arbitrary strings 4,562,000 / 600 s; parser deep nesting 28,000 / 634 s (the grammar-shaped
//! parser properties were stopped early to free the CPU; they run 3,000 cases each in CI).
mod common;
use fusebox::{parse, Device, Error, Expr, Options, Session};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const DEFAULT_CASES: u32 = 3000;

/// The largest allocation a rejected hostile header may cause (the readers' own buffers).
const ALLOC_LIMIT: usize = 16 << 20;

/// The system allocator, recording the largest request made while [`TRACK`] is set.
struct Recording;
static LARGEST: AtomicUsize = AtomicUsize::new(0);
static TRACK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

// SAFETY: every call forwards to `System` with the caller's arguments unchanged; the bookkeeping
// only touches atomics and never allocates.
unsafe impl GlobalAlloc for Recording {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if TRACK.load(Ordering::Relaxed) {
            LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        }
        // SAFETY: forwarded as is (the caller upholds `GlobalAlloc::alloc`'s contract).
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout (forwarded above).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if TRACK.load(Ordering::Relaxed) {
            LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        }
        // SAFETY: forwarded as is.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if TRACK.load(Ordering::Relaxed) {
            LARGEST.fetch_max(new_size, Ordering::Relaxed);
        }
        // SAFETY: forwarded as is (`ptr`/`layout` from a previous `System` allocation).
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Recording = Recording;

/// Run `f` and return its result with the largest single allocation it (or another thread of
/// this binary, meanwhile) requested. Tests that track run one at a time (see [`TRACKING`]).
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.store(0, Ordering::SeqCst);
    TRACK.store(true, Ordering::SeqCst);
    let r = f();
    TRACK.store(false, Ordering::SeqCst);
    (r, LARGEST.load(Ordering::SeqCst))
}
static TRACKING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Run `test` on values of `strategy`: `FUSEBOX_FUZZ_SECONDS` seconds of fresh random runs,
/// else `FUSEBOX_FUZZ_CASES` (or [`DEFAULT_CASES`]) cases. Prints what ran.
fn fuzz<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let seconds: Option<u64> = std::env::var("FUSEBOX_FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok());
    let cases: u32 = std::env::var("FUSEBOX_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let config = |cases| Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        source_file: Some(file!()),
        ..Config::default()
    };
    let start = Instant::now();
    let mut total = 0u64;
    loop {
        let batch = if seconds.is_some() { 2000 } else { cases };
        let mut runner = TestRunner::new(config(batch));
        if let Err(e) = runner.run(&strategy, &test) {
            panic!("{name}: {e}");
        }
        total += batch as u64;
        match seconds {
            Some(s) if start.elapsed() < Duration::from_secs(s) => continue,
            _ => break,
        }
    }
    println!(
        "fuzz {name}: {total} cases in {:.1} s, no failure",
        start.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------- the expression parser

/// Names the fuzzed expressions may use: inputs of every dtype (shapes that broadcast) and
/// one of another shape.
fn lookup(name: &str) -> Option<Expr> {
    use ndarray::{arr1, Array2};
    Some(match name {
        "x" => Expr::data(arr1(&[0.5, -1.5, f64::NAN, 3.0]), Some("x")),
        "y" => Expr::data(arr1(&[2.0f32, 0.0, -0.0, f32::INFINITY]), Some("y")),
        "i" => Expr::data(arr1(&[0i32, -7, i32::MAX, i32::MIN]), Some("i")),
        "j" => Expr::data(arr1(&[3i64, 0, i64::MIN, 64]), Some("j")),
        "b" => Expr::data(arr1(&[true, false, true, true]), Some("b")),
        "m" => Expr::data(Array2::<f64>::ones((3, 1)), Some("m")),
        "w" => Expr::data(arr1(&[1.0, 2.0, 3.0]), Some("w")),
        _ => return None,
    })
}

/// Tokens of the numexpr grammar, valid and not.
const TOKENS: &[&str] = &[
    "x",
    "y",
    "i",
    "j",
    "b",
    "m",
    "w",
    "q",
    "pi",
    "e",
    "nan",
    "inf",
    "True",
    "False",
    "0",
    "1",
    "2",
    "7",
    "2.5",
    ".5",
    "1.",
    "1e3",
    "1E-3",
    "1e999",
    "1e-999",
    "3j",
    "0x10",
    "00",
    "9223372036854775807",
    "9223372036854775808",
    "99999999999999999999999",
    "+",
    "-",
    "*",
    "/",
    "//",
    "%",
    "**",
    "&",
    "|",
    "^",
    "~",
    "!",
    "<<",
    ">>",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "=",
    "(",
    ")",
    ",",
    "[",
    "]",
    "'",
    "\"",
    "'int32'",
    "float32",
    "int64",
    "bool",
    "where",
    "sum",
    "astype",
    "sqrt",
    "exp",
    "log",
    "sin",
    "arctan2",
    "hypot",
    "abs",
    "maximum",
    "minimum",
    "copysign",
    "nextafter",
    "fmod",
    "where(",
    "sum(",
    "astype(",
    "arctan2(",
    "sqrt(",
    "and",
    "or",
    "not",
    "@",
    "$",
    "#",
    "\\",
    "é",
    "∞",
    "\u{0}",
    " ",
    "  ",
    "\t",
    "\n",
];

/// A random sequence of grammar tokens.
fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..40).prop_map(|t| t.concat())
}

/// A mostly well-formed expression from the grammar, with depth up to 8.
fn grammar() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(vec![
        "x", "y", "i", "j", "b", "m", "w", "2", "2.5", "-1", "0", "True", "pi", "1e308", "nan",
    ])
    .prop_map(str::to_string);
    leaf.prop_recursive(8, 64, 3, |inner| {
        let infix = prop::sample::select(vec![
            "+", "-", "*", "/", "//", "%", "**", "&", "|", "^", "<<", ">>", "==", "!=", "<", "<=",
            ">", ">=",
        ]);
        let func1 = prop::sample::select(
            fusebox::UnaryOp::ALL
                .iter()
                .map(|o| o.name())
                .filter(|n| *n != "neg" && *n != "not")
                .chain(["sum"])
                .collect::<Vec<_>>(),
        );
        let func2 = prop::sample::select(vec![
            "arctan2",
            "hypot",
            "maximum",
            "minimum",
            "copysign",
            "nextafter",
            "fmod",
        ]);
        let dtype = prop::sample::select(vec!["bool", "int32", "'int64'", "float32", "float64"]);
        prop_oneof![
            4 => (inner.clone(), infix, inner.clone())
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            2 => (func1, inner.clone()).prop_map(|(f, a)| format!("{f}({a})")),
            1 => (func2, inner.clone(), inner.clone())
                .prop_map(|(f, a, b)| format!("{f}({a}, {b})")),
            1 => (prop::sample::select(vec!["-", "~", "+"]), inner.clone())
                .prop_map(|(op, a)| format!("{op}{a}")),
            1 => (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(c, a, b)| format!("where({c}, {a}, {b})")),
            1 => (inner, dtype).prop_map(|(a, t)| format!("astype({a}, {t})")),
        ]
    })
}

/// Grammar-shaped input with a mutation: a character deleted, duplicated or replaced.
fn mutated() -> impl Strategy<Value = String> {
    (
        grammar(),
        any::<prop::sample::Index>(),
        0u8..4,
        prop::sample::select(TOKENS),
    )
        .prop_map(|(s, at, how, tok)| {
            let chars: Vec<char> = s.chars().collect();
            if chars.is_empty() {
                return s;
            }
            let k = at.index(chars.len());
            let mut out: String = chars[..k].iter().collect();
            match how {
                0 => {}
                1 => out.push(chars[k]),
                2 => out.push_str(tok),
                _ => {
                    out.push(chars[k]);
                    out.push_str(tok);
                }
            }
            out.extend(&chars[k + 1..]);
            out
        })
}

/// Long runs of one nesting construct (the stack-overflow attempts).
fn deep() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["(", "-", "~", "+", "sqrt(", "x**", "where(b,", "(x+"]),
        0usize..20_000,
    )
        .prop_map(|(t, n)| format!("{}x", t.repeat(n)))
}

/// The parser on `src`: a typed error or an expression; when the expression types, computing
/// it on the CPU agrees with the reference evaluator.
fn check_parse(src: &str, compute: bool) -> Result<(), TestCaseError> {
    let parsed = parse::parse(src, &lookup);
    // `names` checks the same syntax without typing.
    let names = parse::names(src);
    match (&parsed, &names) {
        (Ok(_), Err(e)) => {
            return Err(TestCaseError::fail(format!(
                "{src:?}: parses, but names() fails with {e}"
            )))
        }
        // `names` binds every identifier, so a bare function name is a name to it (as it is to
        // `parse` when the caller binds it); unbound, `parse` asks for arguments.
        (Err(Error::Parse { message, .. }), Ok(_)) if !message.contains("needs arguments") => {
            return Err(TestCaseError::fail(format!(
                "{src:?}: names() accepts what parse rejects as syntax ({message})"
            )))
        }
        _ => {}
    }
    match parsed {
        Err(Error::Parse { column, message }) => {
            prop_assert!(
                column >= 1 && column <= src.chars().count() + 1,
                "{src:?}: column {column} outside the input ({message})"
            );
        }
        Err(
            Error::UnknownName { .. }
            | Error::TooDeep { .. }
            | Error::OperandType { .. }
            | Error::ShapeMismatch { .. }
            | Error::IntegerOverflow { .. }
            | Error::EmptyReduction { .. }
            | Error::NegativeIntegerPower { .. }
            | Error::Value { .. }
            | Error::AxisOutOfBounds { .. }
            | Error::DuplicateAxis { .. }
            | Error::Axis { .. }
            | Error::Argument { .. },
        ) => {}
        Err(e) => return Err(TestCaseError::fail(format!("{src:?}: unexpected {e:?}"))),
        Ok(e) => {
            if compute && e.meta().is_ok() {
                let (cpu, reference) = sessions();
                let ours = cpu.compute(&e);
                let oracle = reference.compute(&e);
                match (&ours, &oracle) {
                    (Ok(a), Ok(b)) => {
                        // Exact operators agree bit for bit. An inexact one (a transcendental,
                        // `**`, a float sum, whose order and f32 accumulation are documented to
                        // differ from NumPy's) has no bound that survives what later operators
                        // make of it (`sum(f32) == v` flips on the last bit): there only the
                        // dtype and shape must agree, and `tests/random_diff.rs` checks values.
                        let checked = if uses_transcendentals(src) {
                            common::agree_shape(a, b)
                        } else {
                            common::agree(a, b, 0)
                        };
                        if let Err(m) = checked {
                            return Err(TestCaseError::fail(format!("{src:?} = {e}: {m}")));
                        }
                    }
                    (Err(_), Err(_)) => {}
                    _ => {
                        return Err(TestCaseError::fail(format!(
                            "{src:?} = {e}: cpu {ours:?}, reference {oracle:?}"
                        )))
                    }
                }
            }
        }
    }
    Ok(())
}

/// Transcendentals (and sums) make results inexact; those parses are checked for agreement of
/// dtype, shape and success only (`random_diff.rs` owns the numerical comparison).
fn uses_transcendentals(src: &str) -> bool {
    fusebox::UnaryOp::ALL
        .iter()
        .filter(|o| o.is_transcendental())
        .map(|o| o.name())
        .chain(["**", "arctan2", "hypot", "sum"])
        .any(|n| src.contains(n))
}

fn sessions() -> &'static (Session, Session) {
    static S: std::sync::OnceLock<(Session, Session)> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        let s = |device| Session::with_options(Options::default().with_device(device));
        (s(Device::Cpu), s(Device::Reference))
    })
}

#[test]
fn parser_arbitrary_strings() {
    fuzz("parser/arbitrary strings", any::<String>(), |s| {
        check_parse(&s, false)
    });
    fuzz(
        "parser/arbitrary bytes",
        prop::collection::vec(any::<u8>(), 0..200),
        |b| check_parse(&String::from_utf8_lossy(&b), false),
    );
}

#[test]
fn parser_token_soup() {
    fuzz("parser/token soup", token_soup(), |s| check_parse(&s, true));
}

#[test]
fn parser_grammar_and_mutations() {
    fuzz("parser/grammar", grammar(), |s| check_parse(&s, true));
    fuzz("parser/mutated grammar", mutated(), |s| {
        check_parse(&s, true)
    });
}

#[test]
fn parser_deep_nesting() {
    fuzz("parser/deep nesting", deep(), |s| {
        check_parse(&s, false)?;
        // Whatever parsed is no deeper than the limit allows: computing it cannot overflow.
        Ok(())
    });
}

#[test]
fn parser_regressions() {
    // Inputs worth keeping whatever the fuzzer draws.
    for src in [
        "",
        " ",
        "(",
        ")",
        "x +",
        "'",
        "'int32",
        "astype(x, 'int3",
        "where(",
        "1e999",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775808**2",
        "x[0]",
        "\u{0}",
        "é",
        "x < y < x",
        "astype(x)",
        "sum()",
        "sum(x, x, x)",
        "where(b, x)",
        "3j",
        // x / c became x * (1/c) for a c whose log2 rounds to an integer.
        "((b + 2) / nextafter(astype(1e308, int32), 2))",
        // log of a negative number is x86's default NaN, whose sign bit is set.
        "astype(copysign(2, log(i)), int32)",
    ] {
        check_parse(src, true).unwrap();
    }
}

// ---------------------------------------------------------------- the .npy reader

/// A header dictionary from parts, padded as NumPy pads it.
fn npy_file(version: u8, dict: &str, data_len: usize) -> Vec<u8> {
    let mut v = b"\x93NUMPY".to_vec();
    v.push(version);
    v.push(0);
    let mut text = dict.to_string();
    let pre = if version == 1 { 10 } else { 12 };
    while !(pre + text.len() + 1).is_multiple_of(64) {
        text.push(' ');
    }
    text.push('\n');
    if version == 1 {
        v.extend_from_slice(&(text.len().min(u16::MAX as usize) as u16).to_le_bytes());
    } else {
        v.extend_from_slice(&(text.len() as u32).to_le_bytes());
    }
    v.extend_from_slice(text.as_bytes());
    v.extend(std::iter::repeat_n(0x3fu8, data_len));
    v
}

fn hostile_dim() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (0u64..6).prop_map(|d| d.to_string()),
        1 => Just(u64::MAX.to_string()),
        1 => Just((1u64 << 62).to_string()),
        1 => Just((1u64 << 40).to_string()),
        1 => Just(usize::MAX.to_string() + "0"),
        1 => Just("-1".to_string()),
        1 => Just("3L".to_string()),
        1 => Just("".to_string()),
        1 => Just("1e9".to_string()),
        1 => Just("(2,)".to_string()),
        1 => any::<u64>().prop_map(|d| d.to_string()),
    ]
}

fn hostile_header() -> impl Strategy<Value = Vec<u8>> {
    let descr = prop::sample::select(vec![
        "'<f8'",
        "'<f4'",
        "'>f8'",
        "'<i4'",
        "'>i8'",
        "'|b1'",
        "'|u1'",
        "'<c16'",
        "'O'",
        "'<f8",
        "[('a', '<f8')]",
        "''",
        "'<f8'''",
        "\"<i8\"",
    ]);
    let order = prop::sample::select(vec!["False", "True", "0", "None", "'x'"]);
    (
        1u8..4,
        descr,
        order,
        prop::collection::vec(hostile_dim(), 0..6),
        0usize..256,
        any::<bool>(),
    )
        .prop_map(|(version, descr, order, dims, data_len, trailing_comma)| {
            let mut shape = dims.join(", ");
            if trailing_comma || dims.len() == 1 {
                shape.push(',');
            }
            let dict =
                format!("{{'descr': {descr}, 'fortran_order': {order}, 'shape': ({shape}), }}");
            npy_file(version, &dict, data_len)
        })
}

/// Valid files with bytes flipped, cut or appended.
fn corrupted() -> impl Strategy<Value = Vec<u8>> {
    let base = prop::sample::select(vec![
        "bool_4.npy",
        "f32_big_endian.npy",
        "f64_empty_0x3.npy",
        "f64_fortran_2x3.npy",
        "f64_v2.npy",
        "i32_0d.npy",
        "i64_2x2x2.npy",
    ]);
    (
        base,
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        prop::option::of(any::<prop::sample::Index>()),
        prop::collection::vec(any::<u8>(), 0..16),
    )
        .prop_map(|(name, flips, cut, extra)| {
            let mut b = std::fs::read(format!("tests/data/{name}")).expect("fixture");
            for (at, v) in flips {
                let k = at.index(b.len());
                b[k] = v;
            }
            if let Some(at) = cut {
                b.truncate(at.index(b.len() + 1));
            }
            b.extend(extra);
            b
        })
}

/// The reader on `bytes`: an array that matches the bytes' size, or a typed error; never an
/// allocation larger than the input needs.
fn check_npy(bytes: &[u8]) -> Result<(), TestCaseError> {
    let _one = TRACKING.lock().unwrap_or_else(|p| p.into_inner());
    let (r, largest) = largest_allocation(|| fusebox::npy::read_npy_bytes(bytes));
    let budget = ALLOC_LIMIT.max(4 * bytes.len());
    prop_assert!(
        largest <= budget,
        "allocated {largest} bytes for a {}-byte input ({r:?})",
        bytes.len()
    );
    match r {
        Ok(a) => prop_assert!(
            a.nbytes() <= bytes.len(),
            "{} bytes from {}",
            a.nbytes(),
            bytes.len()
        ),
        Err(e @ Error::Npy { path: None, .. }) => {
            prop_assert!(e.to_string().starts_with("npy error: <memory>: "), "{e}")
        }
        Err(Error::UnsupportedDtype { .. }) => {}
        Err(e) => return Err(TestCaseError::fail(format!("unexpected {e:?}"))),
    }
    Ok(())
}

#[test]
fn npy_arbitrary_bytes() {
    fuzz(
        "npy/arbitrary bytes",
        prop::collection::vec(any::<u8>(), 0..512),
        |b| check_npy(&b),
    );
    // With a valid magic string, so the fuzzer gets past the first check.
    fuzz(
        "npy/magic + arbitrary bytes",
        prop::collection::vec(any::<u8>(), 0..512),
        |b| {
            let mut v = b"\x93NUMPY\x01\x00".to_vec();
            v.extend(b);
            check_npy(&v)
        },
    );
}

#[test]
fn npy_hostile_headers() {
    fuzz("npy/hostile headers", hostile_header(), |b| check_npy(&b));
}

#[test]
fn npy_corrupted_files() {
    fuzz("npy/corrupted files", corrupted(), |b| check_npy(&b));
}

#[test]
fn npy_huge_shapes_are_refused_before_allocating() {
    for dims in [
        "18446744073709551615,",
        "4611686018427387904, 4",
        "0, 18446744073709551615, 18446744073709551615",
        "1099511627776, 1099511627776",
        "1000000000,",
    ] {
        let b = npy_file(
            1,
            &format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({dims}), }}"),
            64,
        );
        check_npy(&b).unwrap();
        assert!(fusebox::npy::read_npy_bytes(&b).is_err(), "{dims}");
    }
    // A header longer than the limit is refused before it is read.
    let mut b = b"\x93NUMPY\x02\x00".to_vec();
    b.extend_from_slice(&u32::MAX.to_le_bytes());
    check_npy(&b).unwrap();
    assert!(matches!(
        fusebox::npy::read_npy_bytes(&b),
        Err(Error::Npy { message, .. }) if message.contains("longer than")
    ));
}

#[test]
fn npy_bytes_and_files_read_alike() {
    for name in [
        "bool_4.npy",
        "f64_fortran_2x3.npy",
        "i32_0d.npy",
        "f64_empty_0x3.npy",
    ] {
        let path = format!("tests/data/{name}");
        let a = fusebox::npy::read_npy(std::path::Path::new(&path)).unwrap();
        let b = fusebox::npy::read_npy_bytes(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(a, b, "{name}");
    }
    assert!(fusebox::npy::read_npy_bytes(b"").is_err());
}

/// Found by the grammar fuzzer (`copysign(abs(i), (x * -1))`, x = NaN): the optimized CPU plan
/// gives -2147483647, NumPy and the reference +2147483647. `NaN * -1` keeps the NaN's sign on
/// x86 (the NaN operand is returned), but the optimizer's rewrite `x * -1 -> -x`
/// (`src/opt/rewrite.rs`) flipped it; `copysign` then exposed the sign. The rule now applies
/// to integers only.
#[test]
fn nan_times_minus_one_keeps_its_sign() {
    let x = Expr::data(ndarray::arr1(&[f64::NAN, 1.0]), Some("x"));
    let e = Expr::data(ndarray::arr1(&[2.0, 2.0]), Some("a")).copysign(&x * -1.0);
    let (cpu, reference) = sessions();
    let ours = cpu.compute(&e).unwrap().into_f64().unwrap();
    let oracle = reference.compute(&e).unwrap().into_f64().unwrap();
    assert_eq!(
        ours.into_raw_vec_and_offset().0,
        oracle.into_raw_vec_and_offset().0
    );
}
