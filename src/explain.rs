//! [`Explain`]: a plan without running it. The optimized graph, each kernel's IR, the bytes a
//! fused and an unfused evaluation move, the device each kernel runs on and the estimate on
//! every candidate device; as text (`Display`, `{:#}` with estimates) and as JSON.
use crate::devices::Devices;
use crate::error::Result;
use crate::expr::Expr;
use crate::fmt::{human_bytes, human_time};
use crate::opt::{self, Buf, Lowered, Partition, PlanInput, Step};
use crate::options::{Device, Options};
use crate::place::auto::{plan_kernels, target_name, totals, Placer};
use crate::place::{choose, DeviceEstimate, Estimate, Mode, Residence, Target};
use std::fmt;

/// What [`build`] reads of a session.
pub(crate) struct Context<'a> {
    pub options: &'a Options,
    pub devices: &'a Devices,
    pub placer: &'a Placer,
}

/// Explain `exprs` (cast checks included) with inputs of `shapes` living at `residence`.
pub(crate) fn build(
    cx: &Context<'_>,
    exprs: &[Expr],
    shapes: &dyn Fn(&str) -> Option<Vec<usize>>,
    residence: &dyn Fn(&str) -> Residence,
) -> Result<Explain> {
    let optimize = cx.options.optimize;
    if let Device::Gpu(n) = cx.options.device {
        cx.devices.gpu(n)?;
    }
    let fused = opt::lower_many(exprs, shapes, true)?;
    let unfused = opt::lower_many(exprs, shapes, false)?;
    let fused_plan = opt::partition(&fused, Partition::Fused);
    fused_plan.check_sizes()?;
    let unfused_plan = opt::partition(&unfused, Partition::Unfused);
    unfused_plan.check_sizes()?;
    let total = |ks: &[KernelInfo]| ks.iter().map(|k| k.bytes_read + k.bytes_written).sum();
    let (bytes_fused, bytes_unfused) = (
        total(&step_infos(&fused, &fused_plan.steps, "")),
        total(&step_infos(&unfused, &unfused_plan.steps, "")),
    );
    let shared = fused_plan
        .shared
        .iter()
        .map(|c| {
            format!(
                "{} used by {} kernels: {} (its users move {} B recomputing it, {} B if it is \
                 materialized once)",
                c.node,
                c.users,
                if c.materialized {
                    "materialized"
                } else {
                    "recomputed"
                },
                c.bytes_recompute,
                c.bytes_materialize
            )
        })
        .collect();
    let (lowered, plan) = if optimize {
        (&fused, &fused_plan)
    } else {
        (&unfused, &unfused_plan)
    };
    let steps = &plan.steps;
    let residency: Vec<Residence> = lowered
        .inputs
        .iter()
        .map(|p| match p {
            PlanInput::Symbol { name, .. } => residence(name),
            PlanInput::Data { .. } => Residence::Host,
        })
        .collect();
    let targets = match cx.options.device {
        Device::Auto => cx.placer.auto_targets(steps),
        Device::Cpu => vec![Target::Cpu],
        Device::Gpu(n) => vec![Target::Gpu(n)],
        Device::Reference => vec![],
    };
    let mode = Mode {
        one_time_costs: true,
        result_on_host: true,
    };
    // The row form runs where the plan runs on the CPU (and the CPU's estimate is its).
    let rows = plan
        .rows
        .as_ref()
        .filter(|_| optimize && cx.options.row_form);
    let per_device = cx
        .placer
        .estimates(cx.devices, steps, rows, &targets, &residency, mode)?;
    let device = match cx.options.device {
        Device::Auto => target_name(choose(&totals(&per_device)).unwrap_or(Target::Cpu)),
        Device::Cpu => "cpu".into(),
        d => cx.devices.device_name(d),
    };
    let mut kernels = step_infos(lowered, &plan.steps, &device);
    let row_form = rows.map(|rp| {
        let mut passes = step_infos(lowered, &rp.steps, "cpu");
        for (p, s) in passes.iter_mut().zip(&rp.steps) {
            for (w, t) in p.writes.iter_mut().zip(&s.temps) {
                if !rp.is_result(*t) {
                    w.push_str(" (block, in cache)");
                }
            }
        }
        let (memory_read, memory_written) = rp.memory_bytes();
        RowForm {
            rows: rp.rows,
            block_rows: rp.block_rows,
            passes,
            memory_read,
            memory_written,
        }
    });
    for (i, k) in kernels.iter_mut().enumerate() {
        k.estimates = per_device
            .iter()
            .filter_map(|(t, es)| {
                es.get(i).map(|e| DeviceEstimate {
                    device: t.to_string(),
                    estimate: *e,
                })
            })
            .collect();
    }
    let estimates = per_device
        .iter()
        .map(|(t, es)| DeviceEstimate {
            device: t.to_string(),
            estimate: Estimate::sum(es),
        })
        .collect();
    let expression = exprs
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ");
    Ok(Explain {
        expression,
        graph: fused.graph.to_text(&fused.input_labels()),
        device,
        optimize,
        bytes_fused,
        bytes_unfused,
        kernels,
        shared: if optimize { shared } else { vec![] },
        estimates,
        row_form,
    })
}

fn step_infos(l: &Lowered, steps: &[Step], device: &str) -> Vec<KernelInfo> {
    let labels = l.input_labels();
    let costs = plan_kernels(steps);
    steps
        .iter()
        .zip(costs)
        .enumerate()
        .map(|(i, (s, c))| {
            let reads: Vec<String> = s
                .args
                .iter()
                .map(|b| match *b {
                    Buf::Input(n) => labels[n as usize].clone(),
                    Buf::Temp(t) => format!("t{t}"),
                })
                .collect();
            let bytes_read: u64 = s
                .kernel
                .inputs
                .iter()
                .zip(&s.arg_shapes)
                .map(|(t, shape)| (t.size() * shape.iter().product::<usize>()) as u64)
                .sum();
            let bytes_written: u64 = s
                .kernel
                .output_dtypes()
                .iter()
                .zip(&s.out_shapes)
                .map(|(t, shape)| (t.size() * shape.iter().product::<usize>()) as u64)
                .sum();
            KernelInfo {
                index: i,
                ir: s.kernel.to_string(),
                summary: c.cost.summary(&s.kernel),
                shape: s.shape.clone(),
                reduce_axes: s.reduce_axes.clone(),
                device: device.to_string(),
                reads,
                writes: s.temps.iter().map(|t| format!("t{t}")).collect(),
                bytes_read,
                bytes_written,
                estimates: vec![],
            }
        })
        .collect()
}

/// One kernel of an [`Explain`] report.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KernelInfo {
    pub index: usize,
    /// The kernel IR text.
    pub ir: String,
    /// The IR in one line: elements, loads, arithmetic and transcendental instructions per
    /// element, outputs.
    pub summary: String,
    /// Iteration space.
    pub shape: Vec<usize>,
    /// The axes of `shape` its reductions combine.
    pub reduce_axes: Vec<usize>,
    pub device: String,
    /// What each kernel input reads (input names, or `tN` for result N).
    pub reads: Vec<String>,
    /// The results it writes (`tN`), one per output.
    pub writes: Vec<String>,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// The estimate on every candidate device (empty on the reference device).
    pub estimates: Vec<DeviceEstimate>,
}

/// A plan, explained: what runs where and what it moves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Explain {
    pub expression: String,
    /// The optimized graph, one node per line.
    pub graph: String,
    pub device: String,
    pub optimize: bool,
    /// The kernels that run (fused, or one per operator with `optimize: false`).
    pub kernels: Vec<KernelInfo>,
    /// Bytes read + written by the fused plan.
    pub bytes_fused: u64,
    /// Bytes read + written evaluating one operator at a time with temporaries.
    pub bytes_unfused: u64,
    /// What the planner did with element-wise subexpressions several kernels use (recompute
    /// in each, or materialize once: whichever moves fewer bytes).
    pub shared: Vec<String>,
    /// The whole plan's estimate on every candidate device (sums of the kernels'); `device`
    /// is the one with the lowest total under `Auto`, the pinned one otherwise.
    pub estimates: Vec<DeviceEstimate>,
    /// The row form the CPU runs instead of `kernels` ([`crate::opt::epilogue`]: a reduction
    /// along axis 1 fused with its broadcast epilogue), where the plan has one.
    pub row_form: Option<RowForm>,
}

/// A plan's row form: passes over one block of rows at a time, the block kept in cache.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RowForm {
    pub rows: usize,
    /// Rows per block.
    pub block_rows: usize,
    /// The passes, in order; their byte counts are what each touches over the whole array
    /// (from cache after the first pass over a block).
    pub passes: Vec<KernelInfo>,
    /// Bytes read from and written to memory: each input once, each result once.
    pub memory_read: u64,
    pub memory_written: u64,
}

impl RowForm {
    fn to_json(&self) -> serde_json::Value {
        let passes: Vec<serde_json::Value> = self
            .passes
            .iter()
            .map(|k| {
                serde_json::json!({
                    "shape": k.shape,
                    "reads": k.reads,
                    "writes": k.writes,
                    "reduce_axes": k.reduce_axes,
                    "ir": k.ir,
                })
            })
            .collect();
        serde_json::json!({
            "rows": self.rows,
            "block_rows": self.block_rows,
            "memory_read": self.memory_read,
            "memory_written": self.memory_written,
            "passes": passes,
        })
    }
}

impl Explain {
    /// Bytes the fused plan does not move that the unfused one does.
    pub fn bytes_saved(&self) -> u64 {
        self.bytes_unfused.saturating_sub(self.bytes_fused)
    }
    /// [`Explain::bytes_saved`] as a percentage of the unfused plan's bytes.
    pub fn saved_percent(&self) -> f64 {
        if self.bytes_unfused == 0 {
            0.0
        } else {
            100.0 * self.bytes_saved() as f64 / self.bytes_unfused as f64
        }
    }
    /// Machine-readable form (`fusebox eval --explain --json`).
    pub fn to_json(&self) -> String {
        let kernels: Vec<serde_json::Value> = self
            .kernels
            .iter()
            .map(|k| {
                serde_json::json!({
                    "index": k.index,
                    "device": k.device,
                    "shape": k.shape,
                    "reads": k.reads,
                    "writes": k.writes,
                    "reduce_axes": k.reduce_axes,
                    "bytes_read": k.bytes_read,
                    "bytes_written": k.bytes_written,
                    "summary": k.summary,
                    "estimates": estimates_json(&k.estimates),
                    "ir": k.ir,
                })
            })
            .collect();
        serde_json::json!({
            "expression": self.expression,
            "device": self.device,
            "optimize": self.optimize,
            "graph": self.graph,
            "bytes_fused": self.bytes_fused,
            "bytes_unfused": self.bytes_unfused,
            "bytes_saved": self.bytes_saved(),
            "saved_percent": self.saved_percent(),
            "estimates": estimates_json(&self.estimates),
            "kernels": kernels,
            "shared": self.shared,
            "row_form": self.row_form.as_ref().map(RowForm::to_json),
        })
        .to_string()
    }
}

/// `{"cpu": {...}, "gpu:0": {...}}`.
fn estimates_json(es: &[DeviceEstimate]) -> serde_json::Value {
    serde_json::Value::Object(
        es.iter()
            .map(|e| (e.device.clone(), e.estimate.to_json()))
            .collect(),
    )
}

/// `cpu 1.2 ms = transfer 0 + launch 2.0 us + ...`.
fn estimate_line(e: &DeviceEstimate) -> String {
    let x = &e.estimate;
    let mut s = format!(
        "{} {} = transfer {} + launch {} + compile {} + max(compute {}, memory {})",
        e.device,
        human_time(x.total_s()),
        human_time(x.transfer_s),
        human_time(x.launch_s),
        human_time(x.compile_s),
        human_time(x.compute_s),
        human_time(x.memory_s)
    );
    if x.thread_start_s > 0.0 {
        s.push_str(&format!(" + threads {}", human_time(x.thread_start_s)));
    }
    if x.bytes_to_device + x.bytes_from_device > 0 {
        s.push_str(&format!(
            " [{} to device, {} back]",
            human_bytes(x.bytes_to_device),
            human_bytes(x.bytes_from_device)
        ));
    }
    s
}

/// `{}` prints the plan (graph, kernels, bytes): text that depends only on the expression.
/// `{:#}` adds, per kernel, its one-line summary and the estimate on every candidate device,
/// and the plan's estimates (measured numbers: they vary by machine), as `fusebox eval
/// --explain` prints it.
impl fmt::Display for Explain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "expression: {}", self.expression)?;
        writeln!(f, "optimized graph:")?;
        for line in self.graph.lines() {
            writeln!(f, "  {line}")?;
        }
        let mode = if self.optimize {
            "fused"
        } else {
            "unfused: one per operator"
        };
        writeln!(
            f,
            "kernels: {} ({mode}), device: {}",
            self.kernels.len(),
            self.device
        )?;
        for k in &self.kernels {
            let axes = if k.reduce_axes.is_empty() {
                String::new()
            } else {
                format!(" reducing axes {:?}", k.reduce_axes)
            };
            writeln!(
                f,
                "kernel {} over {:?}{axes}, reads [{}], writes [{}], moves {} read + {} written",
                k.index,
                k.shape,
                k.reads.join(", "),
                k.writes.join(", "),
                human_bytes(k.bytes_read),
                human_bytes(k.bytes_written)
            )?;
            if f.alternate() {
                writeln!(f, "  summary: {}", k.summary)?;
                for e in &k.estimates {
                    writeln!(f, "  estimate {}", estimate_line(e))?;
                }
            }
            for line in k.ir.lines() {
                writeln!(f, "  {line}")?;
            }
        }
        for line in &self.shared {
            writeln!(f, "shared {line}")?;
        }
        if let Some(r) = &self.row_form {
            let kernels: u64 = self
                .kernels
                .iter()
                .map(|k| k.bytes_read + k.bytes_written)
                .sum();
            writeln!(
                f,
                "row form (cpu): {} passes per block of {} of {} rows, moves {} read + {} \
                 written from memory ({} B; the kernels above: {} B)",
                r.passes.len(),
                r.block_rows,
                r.rows,
                human_bytes(r.memory_read),
                human_bytes(r.memory_written),
                r.memory_read + r.memory_written,
                kernels
            )?;
            for (i, k) in r.passes.iter().enumerate() {
                let axes = if k.reduce_axes.is_empty() {
                    String::new()
                } else {
                    format!(" reducing axes {:?}", k.reduce_axes)
                };
                writeln!(
                    f,
                    "pass {i} over {:?}{axes}, reads [{}], writes [{}]",
                    k.shape,
                    k.reads.join(", "),
                    k.writes.join(", ")
                )?;
                for line in k.ir.lines() {
                    writeln!(f, "  {line}")?;
                }
            }
        }
        if f.alternate() && !self.estimates.is_empty() {
            writeln!(f, "placement: {}; estimated time of the plan:", self.device)?;
            for e in &self.estimates {
                writeln!(f, "  {}", estimate_line(e))?;
            }
        }
        write!(
            f,
            "bytes moved: fused {} ({} B), unfused {} ({} B), saved {} ({:.0}%)",
            human_bytes(self.bytes_fused),
            self.bytes_fused,
            human_bytes(self.bytes_unfused),
            self.bytes_unfused,
            human_bytes(self.bytes_saved()),
            self.saved_percent()
        )
    }
}
