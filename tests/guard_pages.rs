//! Memory safety of the CPU JIT's loads: random shapes and strides (zero, negative, gaps,
//! transposed, empty, 0-d) over inputs placed against `PROT_NONE` guard pages, so that a load
//! one element outside its buffer faults and kills the test. Each input is placed twice: ending
//! exactly at a guard page (overruns), and starting right after one (underruns, which reversed
//! axes would cause). Results are compared with the reference evaluator.
//!
//! Stores go to outputs the engine allocates itself; they are checked by the results (and by
//! the allocator: a heap overrun tends to abort at free), not by guard pages.
#![cfg(target_os = "linux")]
mod common;
use fusebox::{ArgView, DType, Device, Expr, Options, Session};
use ndarray::{ArrayViewD, Axis, IxDyn, ShapeBuilder};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

const DEFAULT_CASES: u32 = 300;

/// `bytes` of readable and writable memory with an inaccessible page on both sides; the data
/// either ends at the upper guard page or starts at the end of the lower one.
struct Guarded {
    base: *mut libc::c_void,
    total: usize,
    data: *mut u8,
    bytes: usize,
}

impl Guarded {
    fn new(bytes: usize, at_end: bool) -> Guarded {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let data_pages = bytes.div_ceil(page).max(1);
        let total = (data_pages + 2) * page;
        // SAFETY: an anonymous private mapping of `total` bytes at an address of the kernel's
        // choice; the result is checked below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED, "mmap");
        let b = base as *mut u8;
        // SAFETY: both ranges are whole pages inside the mapping just made.
        unsafe {
            assert_eq!(libc::mprotect(base, page, libc::PROT_NONE), 0);
            assert_eq!(
                libc::mprotect(
                    b.add((data_pages + 1) * page) as *mut libc::c_void,
                    page,
                    libc::PROT_NONE
                ),
                0
            );
        }
        // SAFETY: both offsets stay inside the readable pages `[page, (data_pages + 1) * page)`
        // (`bytes <= data_pages * page`).
        let data = unsafe {
            if at_end {
                b.add(page + data_pages * page - bytes)
            } else {
                b.add(page)
            }
        };
        Guarded {
            base,
            total,
            data,
            bytes,
        }
    }

    /// The data as a slice of `T` (`bytes` must be a multiple of its size; page-aligned ends
    /// keep it aligned).
    fn slice<T: Copy>(&mut self) -> &mut [T] {
        assert_eq!(self.bytes % std::mem::size_of::<T>(), 0);
        assert_eq!(self.data as usize % std::mem::align_of::<T>(), 0);
        // SAFETY: `data..data + bytes` is readable and writable, owned by `self` (borrowed
        // mutably here), aligned for `T` (checked), and any bit pattern is a valid `T` for the
        // plain number types used (bools are written before they are read).
        unsafe {
            std::slice::from_raw_parts_mut(
                self.data as *mut T,
                self.bytes / std::mem::size_of::<T>(),
            )
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`, which nothing borrows any more
        // (views borrow `self`).
        unsafe {
            libc::munmap(self.base, self.total);
        }
    }
}

/// One input's geometry: logical shape, per-axis step (0 = broadcast, stride 0), reversed
/// axes, memory order of the axes.
#[derive(Debug, Clone)]
struct Geometry {
    shape: Vec<usize>,
    steps: Vec<usize>,
    reversed: Vec<bool>,
    perm: Vec<usize>,
}

impl Geometry {
    /// Non-negative strides (in elements) and the number of elements the view spans: axes
    /// from the innermost in memory order out, each `step` times the span of the axes inside
    /// it (step 0: stride 0, a broadcast axis; step 2: a gap between blocks).
    fn layout(&self) -> (Vec<usize>, usize) {
        let rank = self.shape.len();
        let order: Vec<usize> = self.perm.iter().copied().filter(|&a| a < rank).collect();
        let mut strides = vec![0usize; rank];
        let mut span = 1usize;
        for &a in order.iter().rev() {
            strides[a] = self.steps[a] * span;
            span += self.shape[a].saturating_sub(1) * strides[a];
        }
        // (An empty view still gets its one element: ndarray wants the offsets of its strides
        // inside the slice, and the JIT must not read it.)
        (strides, span)
    }
}

fn geometry() -> impl Strategy<Value = Geometry> {
    let dim = prop_oneof![1 => Just(0usize), 2 => Just(1usize), 8 => 2usize..9, 1 => 60usize..300];
    (
        prop::collection::vec(dim, 0..4),
        prop::collection::vec(
            prop_oneof![1 => Just(0usize), 6 => Just(1usize), 2 => 2usize..4],
            3,
        ),
        prop::collection::vec(any::<bool>(), 3),
        Just(vec![0usize, 1, 2]).prop_shuffle(),
    )
        .prop_map(|(shape, steps, reversed, perm)| Geometry {
            steps: steps[..shape.len()].to_vec(),
            reversed: reversed[..shape.len()].to_vec(),
            shape,
            perm,
        })
}

/// A view over `mem` with the geometry (values filled in by the caller).
fn view<'a, T: Copy>(mem: &'a [T], g: &Geometry, strides: &[usize]) -> ArrayViewD<'a, T> {
    let mut v = ArrayViewD::from_shape(IxDyn(&g.shape).strides(IxDyn(strides)), mem)
        .expect("the strides index the slice");
    for (a, &r) in g.reversed.iter().enumerate() {
        if r {
            v.invert_axis(Axis(a));
        }
    }
    v
}

/// Expressions over two inputs `a` (f64) and `b` (int32 or f64), element-wise and reductions.
fn expressions(a: &Expr, b: &Expr, c: &Expr) -> Vec<Expr> {
    vec![
        a * 2.0 + 1.0,
        -a,
        a.abs().sqrt(),
        a + b,
        fusebox::where_(a.gt(b), a, b),
        a.sum(),
        (a * b).sum(),
        b.astype(DType::F32),
        fusebox::where_(c, a, 0.0),
        c ^ a.lt(0.0),
    ]
}

fn check(ga: &Geometry, gb: &Geometry, gc: &Geometry, b_f64: bool, at_end: bool) {
    let (sa, na) = ga.layout();
    let (sb, nb) = gb.layout();
    let (sc, nc) = gc.layout();
    let mut ma = Guarded::new(na * 8, at_end);
    let mut mb = Guarded::new(nb * if b_f64 { 8 } else { 4 }, at_end);
    let mut mc = Guarded::new(nc, at_end);
    for (k, v) in ma.slice::<f64>().iter_mut().enumerate() {
        *v = (k as f64 * 0.61).sin() * 100.0;
    }
    if b_f64 {
        for (k, v) in mb.slice::<f64>().iter_mut().enumerate() {
            *v = k as f64 - 40.0;
        }
    } else {
        for (k, v) in mb.slice::<i32>().iter_mut().enumerate() {
            *v = (k as i32 * 37) % 101 - 50;
        }
    }
    for (k, v) in mc.slice::<u8>().iter_mut().enumerate() {
        *v = (k % 3 == 0) as u8;
    }
    let va = view::<f64>(ma.slice(), ga, &sa);
    let vb: ArgView<'_> = if b_f64 {
        view::<f64>(mb.slice(), gb, &sb).into()
    } else {
        view::<i32>(mb.slice(), gb, &sb).into()
    };
    // SAFETY: every byte of the bool buffer was written as 0 or 1 above, so it is a valid bool;
    // the u8 slice and the bool view never coexist as mutable.
    let bools: &[bool] = unsafe {
        let s = mc.slice::<u8>();
        std::slice::from_raw_parts(s.as_ptr() as *const bool, s.len())
    };
    let vc = view::<bool>(bools, gc, &sc);
    let dt_b = if b_f64 { DType::F64 } else { DType::I32 };
    let a = Expr::symbol("a", DType::F64, &ga.shape);
    let b = Expr::symbol("b", dt_b, &gb.shape);
    let c = Expr::symbol("c", DType::Bool, &gc.shape);
    // The reference gets standard-layout copies (see `empty_strided_view_is_copied_without_panic`).
    let copies = [
        std_copy(&va.clone().into()),
        std_copy(&vb),
        std_copy(&vc.clone().into()),
    ];
    let oracle_bindings = [
        ("a", copies[0].view()),
        ("b", copies[1].view()),
        ("c", copies[2].view()),
    ];
    let bindings = [("a", va.into()), ("b", vb), ("c", vc.into())];
    let (reference, engines) = sessions();
    for cpu in engines {
        for e in expressions(&a, &b, &c) {
            let ours = cpu.compute_with(&e, &bindings);
            let oracle = reference.compute_with(&e, &oracle_bindings);
            match (ours, oracle) {
                (Ok(x), Ok(y)) => {
                    let r = match e.kind() {
                        fusebox::ExprKind::Reduce(_, op, _) => {
                            let summed = reference.compute_with(op, &oracle_bindings).unwrap();
                            common::sum_agree(&x, &y, &summed)
                        }
                        _ => common::agree(&x, &y, 0),
                    };
                    if let Err(m) = r {
                        panic!("{e} a={ga:?} b={gb:?} c={gc:?}: {m}");
                    }
                }
                (Err(x), Err(y)) => assert_eq!(
                    std::mem::discriminant(&x),
                    std::mem::discriminant(&y),
                    "{e}: {x} vs {y}"
                ),
                (x, y) => panic!("{e} a={ga:?} b={gb:?}: ours {x:?}, reference {y:?}"),
            }
        }
    }
}

/// The reference, and the CPU with and without the optimizer (shared, so kernels are cached).
fn sessions() -> &'static (Session, [Session; 2]) {
    static S: std::sync::OnceLock<(Session, [Session; 2])> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        let s = |device, optimize| {
            Session::with_options(
                Options::default()
                    .with_device(device)
                    .with_optimize(optimize),
            )
        };
        (
            s(Device::Reference, true),
            [s(Device::Cpu, true), s(Device::Cpu, false)],
        )
    })
}

/// A C-order copy made element by element (never `to_owned` of an odd view).
fn std_copy(v: &ArgView<'_>) -> fusebox::DynArray {
    fn go<T: fusebox::Element>(a: &ArrayViewD<'_, T>) -> fusebox::DynArray {
        ndarray::ArrayD::from_shape_vec(IxDyn(a.shape()), a.iter().copied().collect())
            .expect("element count")
            .into()
    }
    match v {
        ArgView::Bool(a) => go(a),
        ArgView::I32(a) => go(a),
        ArgView::I64(a) => go(a),
        ArgView::I8(a) => go(a),
        ArgView::I16(a) => go(a),
        ArgView::U8(a) => go(a),
        ArgView::U16(a) => go(a),
        ArgView::U32(a) => go(a),
        ArgView::U64(a) => go(a),
        ArgView::F16(a) => go(a),
        ArgView::F32(a) => go(a),
        ArgView::F64(a) => go(a),
    }
}

fn cases() -> u32 {
    std::env::var("FUSEBOX_GUARD_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

proptest! {
    #![proptest_config(Config {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..Config::default()
    })]

    /// Independent geometries (shape mismatches are fine: both sides must then fail alike).
    #[test]
    fn loads_stay_inside_their_buffers(
        ga in geometry(),
        gb in geometry(),
        gc in geometry(),
        b_f64 in any::<bool>(),
    ) {
        check(&ga, &gb, &gc, b_f64, true);
        check(&ga, &gb, &gc, b_f64, false);
    }

    /// Same shapes (every expression computes), independent strides and orders.
    #[test]
    fn loads_stay_inside_their_buffers_same_shape(
        ga in geometry(),
        gb in geometry(),
        gc in geometry(),
        b_f64 in any::<bool>(),
    ) {
        let same = |g: &Geometry| Geometry {
            shape: ga.shape.clone(),
            steps: g.steps.iter().chain([1, 1, 1].iter()).take(ga.shape.len()).copied().collect(),
            reversed: g.reversed.iter().chain([false; 3].iter()).take(ga.shape.len()).copied().collect(),
            perm: g.perm.clone(),
        };
        check(&ga, &same(&gb), &same(&gc), b_f64, true);
        check(&ga, &same(&gb), &same(&gc), b_f64, false);
    }
}

/// The guard pages work: reading one element past the data faults (checked in a child
/// process, which must die of SIGSEGV).
#[test]
fn a_read_past_the_end_faults() {
    if std::env::var("FUSEBOX_GUARD_CHILD").is_ok() {
        let mut g = Guarded::new(8, true);
        let p = g.slice::<f64>().as_ptr();
        // SAFETY: deliberately not safe: this child process exists to fault here.
        let v = unsafe { std::ptr::read_volatile(p.add(1)) };
        println!("read {v} past the end without a fault");
        std::process::exit(0);
    }
    let exe = std::env::current_exe().unwrap();
    let status = std::process::Command::new(exe)
        .args(["a_read_past_the_end_faults", "--exact", "--nocapture"])
        .env("FUSEBOX_GUARD_CHILD", "1")
        .output()
        .unwrap()
        .status;
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGSEGV), "{status:?}");
}

/// An empty view with non-zero strides (shape `[0, 2]`, strides `[2, 1]`, as
/// `ArrayView::from_shape((0, 2).strides((2, 1)), &buf)` or a view over foreign memory makes):
/// copying it with ndarray's `to_owned()` keeps those strides for the empty copy and trips
/// ndarray's debug assertion ("can_index_slice ... OwnedMutable"). So in debug builds the
/// reference device's binding copy (`ArgView::to_dyn_array`) and `Expr::data(view)`
/// (`From<ArrayView> for DynArray`), both in `src/array.rs`, panicked on user input; they now
/// copy element by element into `Array::from_shape_vec`. (Slicing `a[0:0]` gives stride 0 on
/// the empty axis and was fine.)
#[test]
fn empty_strided_view_is_copied_without_panic() {
    let buf = [0.0f64; 2];
    let v = ArrayViewD::from_shape(IxDyn(&[0, 2]).strides(IxDyn(&[2, 1])), &buf[..]).unwrap();
    let reference = Session::with_options(Options::default().with_device(Device::Reference));
    let x = Expr::symbol("x", DType::F64, &[0, 2]);
    let r = reference
        .compute_with(&(&x + 1.0), &[("x", v.clone().into())])
        .unwrap();
    assert_eq!(r.shape(), &[0, 2]);
    let d = Expr::data(v, Some("d"));
    assert_eq!(d.shape().unwrap(), vec![0, 2]);
}
