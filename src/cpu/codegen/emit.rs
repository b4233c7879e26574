//! Emission of the kernel body: each kernel-IR instruction as scalar or vector Cranelift
//! instructions (constants pooled or kept in registers, rare-lane fallbacks, per-lane
//! emulation where a vector instruction does not exist). The loops around it are in the
//! parent module.
use super::*;

impl Gen<'_, '_> {
    /// Emit the kernel's instructions for unrolled step `u` of the loop: input `j`'s elements
    /// are read from `addrs[j]` plus `u` values' worth of bytes (0 in the scalar loop).
    ///
    /// In the SIMD loop every bool value is a lane mask whose lane width it carries in
    /// `self.mask_w` (indexed like the values; a number's entry is its element size): a
    /// comparison's mask has its operands' width, a loaded bool array bytes, a constant the
    /// kernel's widest. A consumer resizes a mask to the width it needs with one byte shuffle
    /// ([`Gen::mask_resize`]): a `where` to its branches' width, a cast to its target's, a store
    /// to bytes, a reduction or a fallback's test to the widest.
    pub(super) fn body(&mut self, mode: Mode, addrs: &[Value], u: usize) -> Result<Vec<Value>> {
        let k = self.k;
        let mut vals: Vec<Value> = Vec::with_capacity(k.insts.len());
        let mut widths: Vec<usize> = Vec::with_capacity(k.insts.len());
        for d in &k.insts {
            // The mask width of a bool result (numbers: their size; changed below).
            let mut w = if d.ty.is_bool() {
                mode.width()
            } else {
                d.ty.size()
            };
            let v = match d.inst {
                Inst::Load { input } => {
                    let addr = addrs[input as usize];
                    match mode {
                        Mode::Scalar => self.b.ins().load(mode.ty(d.ty), mem(), addr, 0),
                        Mode::Vector { .. } => {
                            w = d.ty.size();
                            let offset = (u * mode.lanes() * d.ty.size()) as i32;
                            self.load_v(mode, d.ty, addr, offset)
                        }
                    }
                }
                Inst::Const(c) => self.constant(mode, c),
                Inst::Unary { op, arg } => match mode {
                    Mode::Scalar => self.unary_s(op, k.ty(arg), vals[arg.index()])?,
                    Mode::Vector { .. } => {
                        let x = self.operand(mode, &vals, arg);
                        self.unary_v(mode, op, k.ty(arg), x)?
                    }
                },
                Inst::Binary { op, lhs, rhs } => {
                    let mut a = self.operand(mode, &vals, lhs);
                    if k.ty(lhs).is_bool() {
                        // Both masks at the wider of their widths.
                        let (wa, wb) = (widths[lhs.index()], widths[rhs.index()]);
                        w = wa.max(wb);
                        a = self.mask_resize(mode, a, wa, w);
                    } else if d.ty.is_bool() {
                        w = k.ty(lhs).size();
                    }
                    match (mode, const_shift(k, op, lhs, rhs)) {
                        // A shift by a constant inside the width needs no NumPy guard: one
                        // vector instruction instead of a guarded lane-by-lane shift (the math
                        // expansions shift exponent bits this way).
                        (Mode::Vector { .. }, Some(amount)) => match op {
                            BinaryOp::Shl => self.b.ins().ishl_imm_s(a, amount),
                            _ => self.b.ins().sshr_imm_s(a, amount),
                        },
                        (Mode::Scalar, _) => self.binary_s(op, k.ty(lhs), a, vals[rhs.index()])?,
                        (Mode::Vector { .. }, None) => {
                            let mut b = self.operand(mode, &vals, rhs);
                            if k.ty(rhs).is_bool() {
                                b = self.mask_resize(mode, b, widths[rhs.index()], w);
                            }
                            self.binary_v(mode, op, k.ty(lhs), d.ty, a, b)?
                        }
                    }
                }
                Inst::Select {
                    cond,
                    on_true,
                    on_false,
                } => {
                    let c = self.operand(mode, &vals, cond);
                    let mut t = self.operand(mode, &vals, on_true);
                    let mut f = self.operand(mode, &vals, on_false);
                    match mode {
                        Mode::Scalar => self.b.ins().select(c, t, f),
                        Mode::Vector { .. } => {
                            if d.ty.is_bool() {
                                let (wt, wf) = (widths[on_true.index()], widths[on_false.index()]);
                                w = wt.max(wf);
                                t = self.mask_resize(mode, t, wt, w);
                                f = self.mask_resize(mode, f, wf, w);
                            }
                            let c = self.mask_resize(mode, c, widths[cond.index()], w);
                            let c = self.mask_as(c, self.b.func.dfg.value_type(t));
                            self.b.ins().bitselect(c, t, f)
                        }
                    }
                }
                Inst::Cast { arg } => {
                    let mut x = self.operand(mode, &vals, arg);
                    let from = k.ty(arg);
                    match mode {
                        Mode::Scalar => self.cast_s(from, d.ty, x),
                        Mode::Vector { .. } => {
                            if from.is_bool() && !d.ty.is_bool() {
                                // A mask of the target's width becomes 0/1 or 0.0/1.0.
                                x = self.mask_resize(mode, x, widths[arg.index()], d.ty.size());
                            } else if from.is_bool() {
                                w = widths[arg.index()];
                            } else if d.ty.is_bool() {
                                w = from.size();
                            }
                            self.cast_v(mode, from, d.ty, x)?
                        }
                    }
                }
                // Same width by the verifier: a pure reinterpretation, lane by lane.
                Inst::Bitcast { arg } => {
                    let x = self.operand(mode, &vals, arg);
                    match mode {
                        Mode::Scalar => {
                            self.b
                                .ins()
                                .bitcast(scalar_type(d.ty), MemFlagsData::new(), x)
                        }
                        Mode::Vector { .. } => {
                            self.b.ins().bitcast(mode.ty(d.ty), lanes_flags(), x)
                        }
                    }
                }
                // One vfmadd: exact by the ISA (compile() checked that it has FMA).
                Inst::Fma { a, b, c } => {
                    let a = self.operand(mode, &vals, a);
                    let b = self.operand(mode, &vals, b);
                    let c = self.operand(mode, &vals, c);
                    self.b.ins().fma(a, b, c)
                }
                Inst::Lookup { table, index } => {
                    let e = table.entries();
                    // SAFETY (of the generated loads): `entries` is a `'static` slice, so the
                    // address stays valid for the program's life, and the index is masked to
                    // `len - 1` (a power of two minus one) before it is scaled, so every load
                    // reads an entry inside it.
                    let base = self.b.ins().iconst(types::I64, e.as_ptr() as i64);
                    let mask = (e.len() - 1) as i64;
                    let ty = d.ty;
                    let wide = self.k.ty(index) == DType::I32;
                    let load = move |g: &mut Self, l: &[Value]| -> Result<Value> {
                        // An int32 index (the float32 tables) is widened first.
                        let l0 = if wide {
                            g.b.ins().sextend(types::I64, l[0])
                        } else {
                            l[0]
                        };
                        let j = g.b.ins().band_imm_s(l0, mask);
                        let off = g.b.ins().ishl_imm_s(j, 3);
                        let a = g.b.ins().iadd(base, off);
                        let flags = MemFlagsData::trusted()
                            .with_readonly()
                            .with_can_move()
                            .with_endianness(Endianness::Little);
                        Ok(g.b.ins().load(Mode::Scalar.ty(ty), flags, a, 0))
                    };
                    let i = vals[index.index()];
                    match mode {
                        Mode::Scalar => load(self, &[i])?,
                        Mode::Vector { .. } => self.per_lane(mode, ty, &[i], load)?,
                    }
                }
                Inst::Fallback { cond, value, call } => {
                    let operands: Vec<Value> =
                        call.args().iter().map(|a| vals[a.index()]).collect();
                    let (c, v) = (vals[cond.index()], vals[value.index()]);
                    let cw = widths[cond.index()];
                    self.fallback(mode, d.ty, (c, cw), v, call, &operands)?
                }
            };
            if let (Inst::Unary { arg, .. }, true) = (d.inst, d.ty.is_bool()) {
                w = widths[arg.index()];
            }
            vals.push(v);
            widths.push(w);
        }
        self.mask_w = widths;
        Ok(vals)
    }

    /// Input elements of `dt` at `addr + offset`, one value's worth (see [`Mode`]): a whole
    /// vector, or the low 8, 4 or 2 bytes with the lanes above zeroed. Bool arrays (bytes 0 or
    /// 1) become byte masks.
    pub(super) fn load_v(&mut self, mode: Mode, dt: DType, addr: Value, offset: i32) -> Value {
        let bytes = mode.lanes() * dt.size();
        let t = if dt.is_bool() {
            types::I8X16
        } else {
            mode.ty(dt)
        };
        let raw = match bytes {
            16 => self.b.ins().load(t, mem(), addr, offset),
            // As a float: one `movsd`/`movss` from memory (an integer goes through a GPR).
            8 | 4 => {
                let (st, vt) = if bytes == 8 {
                    (types::F64, types::F64X2)
                } else {
                    (types::F32, types::F32X4)
                };
                let x = self.b.ins().load(st, mem(), addr, offset);
                let v = self.b.ins().scalar_to_vector(vt, x);
                self.mask_as(v, t)
            }
            _ => {
                let x = self.b.ins().uload16(types::I32, mem(), addr, offset);
                let v = self.b.ins().scalar_to_vector(types::I32X4, x);
                self.mask_as(v, t)
            }
        };
        if dt.is_bool() {
            // 0 - 1 = all ones: one byte-wide mask per element.
            self.b.ins().ineg(raw)
        } else {
            raw
        }
    }

    /// Store one value's worth of `dt` elements (see [`Gen::load_v`]); a bool value is a mask
    /// of width `w`, stored as bytes 0 or 1.
    pub(super) fn store_v(
        &mut self,
        mode: Mode,
        dt: DType,
        (v, w): (Value, usize),
        addr: Value,
        offset: i32,
    ) {
        let v = if dt.is_bool() {
            let m = self.mask_resize(mode, v, w, 1);
            let m = self.mask_as(m, types::I8X16);
            let one = self.iconst(types::I8X16, 1);
            self.b.ins().band(m, one)
        } else {
            v
        };
        let bytes = mode.lanes() * dt.size();
        if bytes == 16 {
            self.b.ins().store(mem(), v, addr, offset);
        } else {
            // Lane 0 of a float vector for 8 and 4 bytes: `movsd`/`movss` to memory.
            let vt = match bytes {
                8 => types::F64X2,
                4 => types::F32X4,
                _ => types::I16X8,
            };
            let x = self.mask_as(v, vt);
            let low = self.b.ins().extractlane(x, 0);
            self.b.ins().store(mem(), low, addr, offset);
        }
    }

    /// Each lane's bytes picked from `x`'s (viewed as bytes) by `pick(byte)`, as type `t`:
    /// one `pshufb`.
    fn shuffle_bytes(&mut self, x: Value, t: Type, pick: impl Fn(usize) -> usize) -> Value {
        let bytes = self.mask_as(x, types::I8X16);
        let mask: Vec<u8> = (0..VEC_BYTES).map(|i| pick(i).min(15) as u8).collect();
        let imm = self.b.func.dfg.immediates.push(ConstantData::from(mask));
        let moved = self.b.ins().shuffle(bytes, bytes, imm);
        self.mask_as(moved, t)
    }

    /// A lane mask of `from`-byte lanes as one of `to`-byte lanes (element `i` stays lane
    /// `i`): every byte of a mask lane is the same, so any of them serves.
    pub(super) fn mask_resize(&mut self, mode: Mode, m: Value, from: usize, to: usize) -> Value {
        if mode == Mode::Scalar || from == to {
            return m;
        }
        self.shuffle_bytes(m, mask_type(to), |b| (b / to) * from)
    }

    /// [`Inst::Fallback`]: `value`, except where `cond` holds. One test of the condition (in a
    /// vector: whether any lane holds) branches to a cold block that makes the scalar call
    /// (in a vector: for every lane, the condition's lanes picked); both paths join after it.
    pub(super) fn fallback(
        &mut self,
        mode: Mode,
        ty: DType,
        (cond, cw): (Value, usize),
        value: Value,
        call: Call,
        operands: &[Value],
    ) -> Result<Value> {
        let arg_dt = self.k.ty(call.args()[0]);
        let slow = self.b.create_block();
        let join = self.b.create_block();
        let scalar = |g: &mut Self, l: &[Value]| match call {
            Call::Unary(op, _) => g.unary_s(op, arg_dt, l[0]),
            Call::Binary(op, _, _) => g.binary_s(op, arg_dt, l[0], l[1]),
        };
        match mode {
            Mode::Scalar => {
                let res = self.b.append_block_param(join, mode.ty(ty));
                self.b.ins().brif(cond, slow, &[], join, &args(&[value]));
                self.b.switch_to_block(slow);
                self.b.set_cold_block(slow);
                let r = scalar(self, operands)?;
                self.b.ins().jump(join, &args(&[r]));
                self.b.switch_to_block(join);
                Ok(res)
            }
            Mode::Vector { .. } => {
                // `value` reaches the join as a block argument, so it is computed before the
                // branch (Cranelift places a pure value at its first use, and an argument of
                // the branch is used there); left for the join, the whole expansion would be
                // placed after the branch, with its inputs spilled across it. The slow block
                // blends the calls' results into it (in the mask's integer type, one
                // `blendv`); the fast path passes it as it is.
                // The test reads the mask at the widest width (no lanes beyond the elements);
                // the blend at the value's.
                let whole = self.mask_resize(mode, cond, cw, mode.width());
                let cond = self.mask_resize(mode, cond, cw, ty.size());
                let mt = self.b.func.dfg.value_type(cond);
                let res = self.b.append_block_param(join, mt);
                let v = self.mask_as(value, mt);
                let any = self.b.ins().vany_true(whole);
                self.b.ins().brif(any, slow, &[], join, &args(&[v]));
                self.b.switch_to_block(slow);
                self.b.set_cold_block(slow);
                let called = self.per_lane(mode, ty, operands, scalar)?;
                let called = self.mask_as(called, mt);
                let blended = self.b.ins().bitselect(cond, called, v);
                self.b.ins().jump(join, &args(&[blended]));
                self.b.switch_to_block(join);
                Ok(self.mask_as(res, mode.ty(ty)))
            }
        }
    }

    /// Kernel value `v` as an operand of the instruction emitted next. In the SIMD loop of a
    /// kernel with more than [`REG_CONSTS`] constants (with fewer, they stay in registers), a
    /// non-bool constant is a load of its own copy in the constant pool, at each use: a load
    /// with one use folds into the instruction as its memory operand, whereas a splatted
    /// constant is hoisted out of the loop, and with more constants than the 16 vector
    /// registers hold, spilled and reloaded by a separate instruction at every use. The loads
    /// are pure (read-only, movable), so Cranelift places each next to its use; their address
    /// is reloaded in every iteration, so they are not hoisted; and the copies have distinct
    /// addresses, so that no load is merged with another (and given two uses).
    pub(super) fn operand(&mut self, mode: Mode, vals: &[Value], v: crate::kir::Value) -> Value {
        if let Inst::Const(c) = self.k.insts[v.index()].inst {
            if let Some(l) = self.pooled(mode, c) {
                return l;
            }
        }
        vals[v.index()]
    }

    /// A load of a fresh pool copy of `c` splatted (see [`Gen::operand`]); `None` outside the
    /// SIMD loop and for bool.
    pub(super) fn pooled(&mut self, mode: Mode, c: Const) -> Option<Value> {
        let base = self.pool_base?;
        if mode == Mode::Scalar || c.dtype() == DType::Bool {
            return None;
        }
        let size = c.dtype().size();
        let lane = &c.bits().to_le_bytes()[..size];
        let off = self.pool.len();
        for _ in 0..VEC_BYTES / size {
            self.pool.extend_from_slice(lane);
        }
        let flags = MemFlagsData::trusted()
            .with_readonly()
            .with_can_move()
            .with_endianness(Endianness::Little);
        let t = mode.ty(c.dtype());
        Some(self.b.ins().load(t, flags, base, off as i32))
    }

    pub(super) fn scalar_const(&mut self, c: Const) -> Value {
        match c {
            Const::Bool(b) => self.b.ins().iconst(types::I8, b as i64),
            Const::I32(v) => self.iconst(types::I32, v as i64),
            Const::I64(v) => self.b.ins().iconst(types::I64, v),
            Const::I8(v) => self.iconst(types::I8, v as i64),
            Const::U8(v) => self.iconst(types::I8, v as i8 as i64),
            Const::I16(v) => self.iconst(types::I16, v as i64),
            Const::U16(v) => self.iconst(types::I16, v as i16 as i64),
            Const::U32(v) => self.iconst(types::I32, v as i32 as i64),
            Const::U64(v) => self.b.ins().iconst(types::I64, v as i64),
            Const::F16(v) => self.iconst(types::I16, v.to_bits() as i16 as i64),
            Const::F32(v) => self.b.ins().f32const(v),
            Const::F64(v) => self.b.ins().f64const(v),
        }
    }

    pub(super) fn constant(&mut self, mode: Mode, c: Const) -> Value {
        match mode {
            Mode::Scalar => self.scalar_const(c),
            Mode::Vector { .. } => {
                let t = mode.ty(c.dtype());
                let s = match c {
                    Const::Bool(b) => return self.iconst(t, -(b as i64)),
                    c => self.scalar_const(c),
                };
                self.b.ins().splat(t, s)
            }
        }
    }

    /// A lane mask reinterpreted as vector type `t` (for `bitselect`).
    pub(super) fn mask_as(&mut self, mask: Value, t: Type) -> Value {
        if self.b.func.dfg.value_type(mask) == t {
            mask
        } else {
            self.b.ins().bitcast(t, lanes_flags(), mask)
        }
    }

    pub(super) fn fconst(&mut self, t: Type, x: f64) -> Value {
        if t.lane_type() == types::F32 {
            let s = self.b.ins().f32const(x as f32);
            if t.is_vector() {
                return self.b.ins().splat(t, s);
            }
            s
        } else {
            let s = self.b.ins().f64const(x);
            if t.is_vector() {
                return self.b.ins().splat(t, s);
            }
            s
        }
    }

    /// An integer constant (splatted for vector types). Cranelift wants narrow immediates
    /// zero-extended, so `x` is masked to the lane width.
    pub(super) fn iconst(&mut self, t: Type, x: i64) -> Value {
        let lane = t.lane_type();
        let bits = lane.bits();
        let x = if bits < 64 {
            x & ((1i64 << bits) - 1)
        } else {
            x
        };
        let s = self.b.ins().iconst(lane, x);
        if t.is_vector() {
            self.b.ins().splat(t, s)
        } else {
            s
        }
    }

    pub(super) fn call(&mut self, h: Helper, xs: &[Value]) -> Result<Value> {
        let f = *self.helpers.get(&h).ok_or_else(|| Error::Compile {
            message: format!("helper {} was not declared", h.name()),
        })?;
        let inst = self.b.ins().call(f, xs);
        Ok(self.b.inst_results(inst)[0])
    }

    pub(super) fn unsupported<T>(&self, what: String) -> Result<T> {
        Err(Error::Compile {
            message: format!("no CPU lowering for {what}"),
        })
    }

    // ---- scalar code ----

    pub(super) fn unary_s(&mut self, op: UnaryOp, dt: DType, x: Value) -> Result<Value> {
        use UnaryOp::*;
        let t = scalar_type(dt);
        Ok(match dt {
            DType::Bool => match op {
                Not => self.b.ins().bxor_imm_s(x, 1),
                Abs | Floor | Ceil | Trunc => x,
                _ => return self.unsupported(format!("{op} of bool")),
            },
            d if d.is_unsigned_int() => match op {
                Neg => self.b.ins().ineg(x),
                Not => self.b.ins().bnot(x),
                Abs | Floor | Ceil | Round | Trunc => x,
                Sign => {
                    let nz = self.b.ins().icmp_imm_s(IntCC::NotEqual, x, 0);
                    self.uextend_to(t, nz)
                }
                _ => return self.unsupported(format!("{op} of {dt}")),
            },
            _ if dt.is_signed_int() => match op {
                Neg => self.b.ins().ineg(x),
                Not => self.b.ins().bnot(x),
                Abs => {
                    let neg = self.b.ins().ineg(x);
                    let lt = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, x, 0);
                    self.b.ins().select(lt, neg, x)
                }
                Sign => {
                    let gt = self.b.ins().icmp_imm_s(IntCC::SignedGreaterThan, x, 0);
                    let lt = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, x, 0);
                    let gt = self.uextend_to(t, gt);
                    let lt = self.uextend_to(t, lt);
                    self.b.ins().isub(gt, lt)
                }
                Floor | Ceil | Round | Trunc => x,
                _ => return self.unsupported(format!("{op} of {dt}")),
            },
            _ => match op {
                Neg => self.b.ins().fneg(x),
                Abs => self.b.ins().fabs(x),
                Sqrt => self.b.ins().sqrt(x),
                Floor => self.b.ins().floor(x),
                Ceil => self.b.ins().ceil(x),
                Round => self.b.ins().nearest(x),
                Trunc => self.b.ins().trunc(x),
                Not => self.fconst(t, f64::NAN),
                Sign => {
                    // x > 0 ? 1 : x < 0 ? -1 : x == 0 ? 0 : x (NaN stays NaN).
                    let zero = self.fconst(t, 0.0);
                    let one = self.fconst(t, 1.0);
                    let mone = self.fconst(t, -1.0);
                    let gt = self.b.ins().fcmp(FloatCC::GreaterThan, x, zero);
                    let lt = self.b.ins().fcmp(FloatCC::LessThan, x, zero);
                    let eq = self.b.ins().fcmp(FloatCC::Equal, x, zero);
                    let r = self.b.ins().select(eq, zero, x);
                    let r = self.b.ins().select(lt, mone, r);
                    self.b.ins().select(gt, one, r)
                }
                _ => self.call(Helper::Un(op, dt), &[x])?,
            },
        })
    }

    pub(super) fn binary_s(
        &mut self,
        op: BinaryOp,
        dt: DType,
        a: Value,
        b: Value,
    ) -> Result<Value> {
        use BinaryOp::*;
        if dt == DType::F16 {
            // The verifier lets only `nextafter` compute on float16.
            return match op {
                Nextafter => Ok(self.nextafter_f16_s(a, b)),
                _ => self.unsupported(format!("{op} of float16")),
            };
        }
        if op.is_comparison() {
            return Ok(match dt {
                DType::F32 | DType::F64 => self.b.ins().fcmp(float_cc(op), a, b),
                DType::Bool => self.b.ins().icmp(int_cc(op, false), a, b),
                _ => self.b.ins().icmp(int_cc(op, dt.is_signed_int()), a, b),
            });
        }
        let t = scalar_type(dt);
        Ok(match dt {
            DType::Bool => match op {
                Add | Or | Maximum => self.b.ins().bor(a, b),
                Mul | And | Minimum => self.b.ins().band(a, b),
                Xor => self.b.ins().bxor(a, b),
                _ => return self.unsupported(format!("{op} of bool")),
            },
            _ if dt.is_unsigned_int() => self.binary_unsigned_s(op, dt, a, b)?,
            _ if dt.is_signed_int() => {
                let bits = t.bits() as i64;
                match op {
                    Add => self.b.ins().iadd(a, b),
                    Sub => self.b.ins().isub(a, b),
                    Mul => self.b.ins().imul(a, b),
                    And => self.b.ins().band(a, b),
                    Or => self.b.ins().bor(a, b),
                    Xor => self.b.ins().bxor(a, b),
                    Maximum => {
                        let c = self.b.ins().icmp(IntCC::SignedGreaterThanOrEqual, a, b);
                        self.b.ins().select(c, a, b)
                    }
                    Minimum => {
                        let c = self.b.ins().icmp(IntCC::SignedLessThanOrEqual, a, b);
                        self.b.ins().select(c, a, b)
                    }
                    FloorDiv | Rem | Fmod => {
                        // Cranelift's sdiv/srem trap on 0 and MIN / -1: divide by 1 in those
                        // cases and pick the defined result (semantics.rs) with selects.
                        let zero = self.iconst(t, 0);
                        let mone = self.iconst(t, -1);
                        let zero_b = self.b.ins().icmp(IntCC::Equal, b, zero);
                        let mone_b = self.b.ins().icmp(IntCC::Equal, b, mone);
                        let special = self.b.ins().bor(zero_b, mone_b);
                        let one = self.b.ins().iconst(t, 1);
                        let safe = self.b.ins().select(special, one, b);
                        let r = self.b.ins().srem(a, safe);
                        match op {
                            Fmod => self.b.ins().select(special, zero, r),
                            Rem => {
                                // r != 0 && (r < 0) != (b < 0) -> r + b
                                let adjust = self.sign_differs(r, b);
                                let rb = self.b.ins().iadd(r, b);
                                let r = self.b.ins().select(adjust, rb, r);
                                self.b.ins().select(special, zero, r)
                            }
                            _ => {
                                let q = self.b.ins().sdiv(a, safe);
                                let adjust = self.sign_differs(r, b);
                                let q1 = self.b.ins().iadd_imm_s(q, -1);
                                let q = self.b.ins().select(adjust, q1, q);
                                let neg = self.b.ins().ineg(a);
                                let q = self.b.ins().select(mone_b, neg, q);
                                self.b.ins().select(zero_b, zero, q)
                            }
                        }
                    }
                    Shl => {
                        // Amounts outside [0, bits) give 0 (unsigned compare catches negatives).
                        let out =
                            self.b
                                .ins()
                                .icmp_imm_s(IntCC::UnsignedGreaterThanOrEqual, b, bits);
                        let s = self.b.ins().ishl(a, b);
                        let zero = self.b.ins().iconst(t, 0);
                        self.b.ins().select(out, zero, s)
                    }
                    Shr => {
                        // Amounts outside [0, bits) shift by bits - 1 (0 or -1, by sign).
                        let out =
                            self.b
                                .ins()
                                .icmp_imm_s(IntCC::UnsignedGreaterThanOrEqual, b, bits);
                        let top = self.b.ins().iconst(t, bits - 1);
                        let amount = self.b.ins().select(out, top, b);
                        self.b.ins().sshr(a, amount)
                    }
                    Pow => self.int_pow(dt, a, b)?,
                    _ => return self.unsupported(format!("{op} of {dt}")),
                }
            }
            _ => match op {
                Add => self.b.ins().fadd(a, b),
                Sub => self.b.ins().fsub(a, b),
                Mul => self.b.ins().fmul(a, b),
                Div => self.b.ins().fdiv(a, b),
                Copysign => self.b.ins().fcopysign(a, b),
                Maximum | Minimum => {
                    // NumPy: (a > b || isnan(a)) ? a : b (and < for minimum): ties give b.
                    let cc = if op == Maximum {
                        FloatCC::GreaterThan
                    } else {
                        FloatCC::LessThan
                    };
                    let c = self.b.ins().fcmp(cc, a, b);
                    let nan = self.b.ins().fcmp(FloatCC::Unordered, a, a);
                    let c = self.b.ins().bor(c, nan);
                    self.b.ins().select(c, a, b)
                }
                And | Or | Xor | Shl | Shr => self.fconst(t, f64::NAN),
                _ => self.call(Helper::Bin(op, dt), &[a, b])?,
            },
        })
    }

    /// `x` (a scalar integer or flag) zero-extended to `t`, or `x` itself if it already is `t`.
    fn uextend_to(&mut self, t: Type, x: Value) -> Value {
        if self.b.func.dfg.value_type(x) == t {
            x
        } else {
            self.b.ins().uextend(t, x)
        }
    }

    /// `x` of integer dtype `dt` sign- or zero-extended (by `dt`'s signedness) to `t`, or
    /// reduced to it when `t` is narrower.
    fn int_resize(&mut self, dt: DType, t: Type, x: Value) -> Value {
        let from = self.b.func.dfg.value_type(x);
        if from == t {
            x
        } else if from.bits() > t.bits() {
            self.b.ins().ireduce(t, x)
        } else if dt.is_signed_int() {
            self.b.ins().sextend(t, x)
        } else {
            self.b.ins().uextend(t, x)
        }
    }

    /// Integer `**`: int32, int64 and uint64 call their wrapper; the narrower types widen to
    /// 64 bits (sign or zero), call the int64 wrapper and keep the low bits (wrapping powers
    /// agree modulo 2^n; a negative exponent only occurs for signed types, which sign-extend).
    fn int_pow(&mut self, dt: DType, a: Value, b: Value) -> Result<Value> {
        match dt {
            DType::I32 | DType::I64 | DType::U64 => {
                self.call(Helper::Bin(BinaryOp::Pow, dt), &[a, b])
            }
            _ => {
                let t = scalar_type(dt);
                let wa = self.int_resize(dt, types::I64, a);
                let wb = self.int_resize(dt, types::I64, b);
                let r = self.call(Helper::Bin(BinaryOp::Pow, DType::I64), &[wa, wb])?;
                Ok(self.b.ins().ireduce(t, r))
            }
        }
    }

    /// Binary operators on an unsigned dtype (scalar): wrapping arithmetic, division and
    /// remainder by zero give 0, shifts by at least the width give 0 (`semantics`).
    fn binary_unsigned_s(&mut self, op: BinaryOp, dt: DType, a: Value, b: Value) -> Result<Value> {
        use BinaryOp::*;
        let t = scalar_type(dt);
        let bits = t.bits() as i64;
        Ok(match op {
            Add => self.b.ins().iadd(a, b),
            Sub => self.b.ins().isub(a, b),
            Mul => self.b.ins().imul(a, b),
            And => self.b.ins().band(a, b),
            Or => self.b.ins().bor(a, b),
            Xor => self.b.ins().bxor(a, b),
            Maximum => self.b.ins().umax(a, b),
            Minimum => self.b.ins().umin(a, b),
            FloorDiv | Rem | Fmod => {
                // udiv/urem trap on 0: divide by 1 there and select 0.
                let zero = self.iconst(t, 0);
                let zero_b = self.b.ins().icmp(IntCC::Equal, b, zero);
                let one = self.b.ins().iconst(t, 1);
                let safe = self.b.ins().select(zero_b, one, b);
                let r = if op == FloorDiv {
                    self.b.ins().udiv(a, safe)
                } else {
                    self.b.ins().urem(a, safe)
                };
                self.b.ins().select(zero_b, zero, r)
            }
            Shl | Shr => {
                let out = self
                    .b
                    .ins()
                    .icmp_imm_s(IntCC::UnsignedGreaterThanOrEqual, b, bits);
                let s = if op == Shl {
                    self.b.ins().ishl(a, b)
                } else {
                    self.b.ins().ushr(a, b)
                };
                let zero = self.b.ins().iconst(t, 0);
                self.b.ins().select(out, zero, s)
            }
            Pow => self.int_pow(dt, a, b)?,
            _ => return self.unsupported(format!("{op} of {dt}")),
        })
    }

    /// A float (f32 or f64) to a signed integer type `t` (32 or 64 bits) with NumPy's x86-64
    /// result: NaN and out-of-range values give the minimum ([`semantics::f64_to_i64`]).
    fn float_to_signed(&mut self, from: DType, t: Type, x: Value) -> Value {
        let x = if from == DType::F32 {
            self.b.ins().fpromote(types::F64, x)
        } else {
            x
        };
        let bits = t.bits() as i32;
        // The saturating conversion already gives MIN below the range; above it (and for NaN,
        // where the ordered compare is false) pick MIN.
        let sat = self.b.ins().fcvt_to_sint_sat(t, x);
        let limit = self.b.ins().f64const(2f64.powi(bits - 1));
        let ok = self.b.ins().fcmp(FloatCC::LessThan, x, limit);
        let min = self.iconst(
            t,
            if bits == 32 {
                i32::MIN as i64
            } else {
                i64::MIN
            },
        );
        self.b.ins().select(ok, sat, min)
    }

    /// A float to an integer dtype with NumPy's x86-64 results ([`semantics::float_to_int`]).
    fn float_to_int_s(&mut self, from: DType, to: DType, x: Value) -> Value {
        let t = scalar_type(to);
        match to {
            DType::I64 => self.float_to_signed(from, types::I64, x),
            DType::U32 | DType::U64 => {
                // x >= 2^(n-1) ? cvt(x - 2^(n-1)) ^ MIN : cvt(x), in f64.
                let x = if from == DType::F32 {
                    self.b.ins().fpromote(types::F64, x)
                } else {
                    x
                };
                let half = 2f64.powi(t.bits() as i32 - 1);
                let h = self.b.ins().f64const(half);
                let big = self.b.ins().fcmp(FloatCC::GreaterThanOrEqual, x, h);
                let low = self.float_to_signed(DType::F64, t, x);
                let xs = self.b.ins().fsub(x, h);
                let hi = self.float_to_signed(DType::F64, t, xs);
                let min = self.iconst(
                    t,
                    if t == types::I32 {
                        i32::MIN as i64
                    } else {
                        i64::MIN
                    },
                );
                let hi = self.b.ins().bxor(hi, min);
                self.b.ins().select(big, hi, low)
            }
            _ => {
                // Through int32, keeping the low bits.
                let v = self.float_to_signed(from, types::I32, x);
                if t == types::I32 {
                    v
                } else {
                    self.b.ins().ireduce(t, v)
                }
            }
        }
    }

    /// `r != 0 && (r < 0) != (b < 0)` as a scalar flag.
    pub(super) fn sign_differs(&mut self, r: Value, b: Value) -> Value {
        let nz = self.b.ins().icmp_imm_s(IntCC::NotEqual, r, 0);
        let x = self.b.ins().bxor(r, b);
        let differ = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, x, 0);
        self.b.ins().band(nz, differ)
    }

    pub(super) fn cast_s(&mut self, from: DType, to: DType, x: Value) -> Value {
        use DType::*;
        let t = scalar_type(to);
        match (from, to) {
            _ if from == to => x,
            // float16 converts through float32 (exact that way), as NumPy's casts do; float64
            // rounds once (`f64_to_f16_s`).
            // float16 -> uint32 goes through int64 as NumPy's loop does (NaN, inf: 0).
            (F16, U32) => {
                let f = self.f16_to_f32_s(x);
                let i = self.cast_s(F32, I64, f);
                self.b.ins().ireduce(types::I32, i)
            }
            (F16, _) => {
                let f = self.f16_to_f32_s(x);
                self.cast_s(F32, to, f)
            }
            (F64, F16) => self.f64_to_f16_s(x),
            (_, F16) => {
                let f = self.cast_s(from, F32, x);
                self.f32_to_f16_s(f)
            }
            (Bool, F32 | F64) => {
                let one = self.fconst(t, 1.0);
                let zero = self.fconst(t, 0.0);
                self.b.ins().select(x, one, zero)
            }
            // bool is 0 or 1 in a byte: zero-extend (or keep, for the 8-bit types).
            (Bool, _) => self.uextend_to(t, x),
            (F32 | F64, Bool) => {
                let zero = self.fconst(scalar_type(from), 0.0);
                self.b.ins().fcmp(FloatCC::NotEqual, x, zero)
            }
            (_, Bool) => self.b.ins().icmp_imm_s(IntCC::NotEqual, x, 0),
            (F32, F64) => self.b.ins().fpromote(t, x),
            (F64, F32) => self.b.ins().fdemote(t, x),
            (F32 | F64, _) => self.float_to_int_s(from, to, x),
            (_, F32 | F64) => {
                // Signed types and everything narrower than 64 bits convert as signed (after
                // widening to at least 32 bits); uint64 converts as unsigned.
                if from == U64 {
                    self.b.ins().fcvt_from_uint(t, x)
                } else {
                    let w = if from.size() < 4 || from == U32 {
                        types::I64
                    } else {
                        scalar_type(from)
                    };
                    let x = self.int_resize(from, w, x);
                    self.b.ins().fcvt_from_sint(t, x)
                }
            }
            // Integer to integer: two's complement resize by the source's signedness.
            _ => self.int_resize(from, t, x),
        }
    }

    /// float16 bits (an `i16`) to float32, exactly: `dtype::f16_to_f32`'s steps.
    pub(super) fn f16_to_f32_s(&mut self, h: Value) -> Value {
        let i = types::I32;
        let h = self.b.ins().uextend(i, h);
        let mag = self.b.ins().band_imm_s(h, 0x7fff);
        let o = self.b.ins().ishl_imm_s(mag, 13);
        let exp = self.b.ins().band_imm_s(o, 0x0f80_0000);
        let o = self.b.ins().iadd_imm_s(o, (127 - 15) << 23);
        // Inf/NaN: the exponent all ones.
        let is_inf = self.b.ins().icmp_imm_s(IntCC::Equal, exp, 0x0f80_0000);
        let o_inf = self.b.ins().iadd_imm_s(o, (128 - 16) << 23);
        // Zero/subnormal: renormalized by one exact float subtraction.
        let is_sub = self.b.ins().icmp_imm_s(IntCC::Equal, exp, 0);
        let o1 = self.b.ins().iadd_imm_s(o, 1 << 23);
        let f1 = self.b.ins().bitcast(types::F32, MemFlagsData::new(), o1);
        let magic = self.b.ins().f32const(f32::from_bits(113 << 23));
        let d = self.b.ins().fsub(f1, magic);
        let o_sub = self.b.ins().bitcast(i, MemFlagsData::new(), d);
        let o = self.b.ins().select(is_sub, o_sub, o);
        let o = self.b.ins().select(is_inf, o_inf, o);
        let sign = self.b.ins().band_imm_s(h, 0x8000);
        let sign = self.b.ins().ishl_imm_s(sign, 16);
        let o = self.b.ins().bor(o, sign);
        self.b.ins().bitcast(types::F32, MemFlagsData::new(), o)
    }

    /// float32 to float16 bits, rounded to nearest even: `dtype::f16_from_f32`'s steps.
    pub(super) fn f32_to_f16_s(&mut self, x: Value) -> Value {
        let i = types::I32;
        let f = self.b.ins().bitcast(i, MemFlagsData::new(), x);
        let sign = self.b.ins().band_imm_s(f, 0x8000_0000u32 as i32 as i64);
        let f = self.b.ins().bxor(f, sign);
        // |x| >= 65536, inf or NaN.
        let big = self
            .b
            .ins()
            .icmp_imm_s(IntCC::UnsignedGreaterThanOrEqual, f, 0x4780_0000);
        let nan = self
            .b
            .ins()
            .icmp_imm_s(IntCC::UnsignedGreaterThan, f, 0x7f80_0000);
        let qnan = self.b.ins().iconst(i, 0x7e00);
        let inf = self.b.ins().iconst(i, 0x7c00);
        let o_big = self.b.ins().select(nan, qnan, inf);
        // Below the smallest normal float16: adding 0.5 rounds the mantissa into place.
        let small = self
            .b
            .ins()
            .icmp_imm_s(IntCC::UnsignedLessThan, f, 0x3880_0000);
        let ff = self.b.ins().bitcast(types::F32, MemFlagsData::new(), f);
        let half = self.b.ins().f32const(0.5);
        let s = self.b.ins().fadd(ff, half);
        let s = self.b.ins().bitcast(i, MemFlagsData::new(), s);
        let o_small = self.b.ins().iadd_imm_s(s, -0x3f00_0000);
        // Normal: rebias, add the rounding bias (one more when the kept mantissa is odd).
        let odd = self.b.ins().ushr_imm_s(f, 13);
        let odd = self.b.ins().band_imm_s(odd, 1);
        let n = self.b.ins().iadd_imm_s(f, 0xc800_0fffu32 as i32 as i64);
        let n = self.b.ins().iadd(n, odd);
        let o_norm = self.b.ins().ushr_imm_s(n, 13);
        let o = self.b.ins().select(small, o_small, o_norm);
        let o = self.b.ins().select(big, o_big, o);
        let sign = self.b.ins().ushr_imm_s(sign, 16);
        let o = self.b.ins().bor(o, sign);
        self.b.ins().ireduce(types::I16, o)
    }

    /// float64 to float16 bits rounded once: to float32 rounded *to odd* (truncated, the last
    /// bit set when inexact), then to float16 (`dtype::f16_from_f64`).
    pub(super) fn f64_to_f16_s(&mut self, x: Value) -> Value {
        let t = self.b.ins().fdemote(types::F32, x);
        let back = self.b.ins().fpromote(types::F64, t);
        let inexact = self.b.ins().fcmp(FloatCC::NotEqual, back, x);
        let ab = self.b.ins().fabs(back);
        let ax = self.b.ins().fabs(x);
        let over = self.b.ins().fcmp(FloatCC::GreaterThan, ab, ax);
        let bits = self.b.ins().bitcast(types::I32, MemFlagsData::new(), t);
        let over = self.b.ins().uextend(types::I32, over);
        let down = self.b.ins().isub(bits, over);
        let odd = self.b.ins().bor_imm_s(down, 1);
        let bits = self.b.ins().select(inexact, odd, bits);
        let t = self.b.ins().bitcast(types::F32, MemFlagsData::new(), bits);
        self.f32_to_f16_s(t)
    }

    /// NumPy's `npy_half_nextafter` on float16 bits (`semantics::nextafter_f16`).
    pub(super) fn nextafter_f16_s(&mut self, x: Value, y: Value) -> Value {
        let xf = self.f16_to_f32_s(x);
        let yf = self.f16_to_f32_s(y);
        let nan = self.b.ins().fcmp(FloatCC::Unordered, xf, yf);
        let eq = self.b.ins().fcmp(FloatCC::Equal, xf, yf);
        let zero = self.b.ins().f32const(0.0);
        let x_zero = self.b.ins().fcmp(FloatCC::Equal, xf, zero);
        // Away from zero when y lies beyond x on x's side.
        let lt = self.b.ins().fcmp(FloatCC::LessThan, xf, yf);
        let pos = self.b.ins().fcmp(FloatCC::GreaterThan, xf, zero);
        let towards = self.b.ins().bxor(lt, pos);
        let up = self.b.ins().iadd_imm_s(x, 1);
        let down = self.b.ins().iadd_imm_s(x, -1);
        let stepped = self.b.ins().select(towards, down, up);
        let ysign = self.b.ins().band_imm_s(y, 0x8000u16 as i16 as i64);
        let tiny = self.b.ins().bor_imm_s(ysign, 1);
        let r = self.b.ins().select(x_zero, tiny, stepped);
        let r = self.b.ins().select(eq, x, r);
        let qnan = self.b.ins().iconst(types::I16, 0x7e00);
        self.b.ins().select(nan, qnan, r)
    }

    // ---- vector code ----

    /// Apply scalar code to each lane (for operations without a vector instruction).
    pub(super) fn per_lane(
        &mut self,
        mode: Mode,
        out: DType,
        xs: &[Value],
        mut f: impl FnMut(&mut Self, &[Value]) -> Result<Value>,
    ) -> Result<Value> {
        let t = mode.ty(out);
        let mut acc: Option<Value> = None;
        for lane in 0..mode.lanes() {
            let ls: Vec<Value> = xs
                .iter()
                .map(|x| self.b.ins().extractlane(*x, lane as u8))
                .collect();
            let r = f(self, &ls)?;
            acc = Some(match acc {
                None => self.b.ins().splat(t, r),
                Some(v) => self.b.ins().insertlane(v, r, lane as u8),
            });
        }
        acc.ok_or_else(|| Error::Compile {
            message: "vector with no lanes".into(),
        })
    }

    pub(super) fn unary_v(
        &mut self,
        mode: Mode,
        op: UnaryOp,
        dt: DType,
        x: Value,
    ) -> Result<Value> {
        use UnaryOp::*;
        let t = mode.ty(dt);
        Ok(match dt {
            DType::Bool => match op {
                Not => self.b.ins().bnot(x),
                Abs | Floor | Ceil | Trunc => x,
                _ => return self.unsupported(format!("{op} of bool")),
            },
            _ if dt.is_unsigned_int() => match op {
                Neg => self.b.ins().ineg(x),
                Not => self.b.ins().bnot(x),
                Abs | Floor | Ceil | Round | Trunc => x,
                Sign => {
                    let zero = self.iconst(t, 0);
                    let one = self.iconst(t, 1);
                    let ne = self.b.ins().icmp(IntCC::NotEqual, x, zero);
                    self.b.ins().band(ne, one)
                }
                _ => return self.unsupported(format!("{op} of {dt}")),
            },
            _ if dt.is_signed_int() => match op {
                Neg => self.b.ins().ineg(x),
                Not => self.b.ins().bnot(x),
                Abs => {
                    let zero = self.iconst(t, 0);
                    let neg = self.b.ins().isub(zero, x);
                    let lt = self.b.ins().icmp(IntCC::SignedLessThan, x, zero);
                    self.b.ins().bitselect(lt, neg, x)
                }
                Sign => {
                    // Lane masks are -1 where true: sign = (x < 0) - (x > 0).
                    let zero = self.iconst(t, 0);
                    let lt = self.b.ins().icmp(IntCC::SignedLessThan, x, zero);
                    let gt = self.b.ins().icmp(IntCC::SignedGreaterThan, x, zero);
                    self.b.ins().isub(lt, gt)
                }
                Floor | Ceil | Round | Trunc => x,
                _ => return self.unsupported(format!("{op} of {dt}")),
            },
            _ => match op {
                // One xor / and with a pooled mask where there is a pool (Cranelift builds the
                // mask with two instructions at every use).
                Neg | Abs => {
                    let mask = match (op, dt) {
                        (Neg, DType::F64) => Const::F64(-0.0),
                        (Neg, _) => Const::F32(-0.0),
                        (_, DType::F64) => Const::F64(f64::from_bits(u64::MAX >> 1)),
                        _ => Const::F32(f32::from_bits(u32::MAX >> 1)),
                    };
                    match (self.pooled(mode, mask), op) {
                        (Some(m), Neg) => self.b.ins().bxor(x, m),
                        (Some(m), _) => self.b.ins().band(x, m),
                        (None, Neg) => self.b.ins().fneg(x),
                        (None, _) => self.b.ins().fabs(x),
                    }
                }
                Sqrt => self.b.ins().sqrt(x),
                Floor => self.b.ins().floor(x),
                Ceil => self.b.ins().ceil(x),
                Round => self.b.ins().nearest(x),
                Trunc => self.b.ins().trunc(x),
                Not => self.fconst(t, f64::NAN),
                Sign => {
                    let zero = self.fconst(t, 0.0);
                    let one = self.fconst(t, 1.0);
                    let mone = self.fconst(t, -1.0);
                    let gt = self.b.ins().fcmp(FloatCC::GreaterThan, x, zero);
                    let lt = self.b.ins().fcmp(FloatCC::LessThan, x, zero);
                    let eq = self.b.ins().fcmp(FloatCC::Equal, x, zero);
                    let (gt, lt, eq) = (
                        self.mask_as(gt, t),
                        self.mask_as(lt, t),
                        self.mask_as(eq, t),
                    );
                    let r = self.b.ins().bitselect(eq, zero, x);
                    let r = self.b.ins().bitselect(lt, mone, r);
                    self.b.ins().bitselect(gt, one, r)
                }
                _ => self.per_lane(mode, dt, &[x], |g, l| g.unary_s(op, dt, l[0]))?,
            },
        })
    }

    pub(super) fn binary_v(
        &mut self,
        mode: Mode,
        op: BinaryOp,
        dt: DType,
        res: DType,
        a: Value,
        b: Value,
    ) -> Result<Value> {
        use BinaryOp::*;
        let t = mode.ty(dt);
        if op.is_comparison() {
            return Ok(match dt {
                DType::F32 | DType::F64 => self.b.ins().fcmp(float_cc(op), a, b),
                DType::Bool => {
                    // Masks: false < true, computed bitwise.
                    match op {
                        Eq => {
                            let x = self.b.ins().bxor(a, b);
                            self.b.ins().bnot(x)
                        }
                        Ne => self.b.ins().bxor(a, b),
                        Lt => self.b.ins().band_not(b, a),
                        Le => self.b.ins().bor_not(b, a),
                        Gt => self.b.ins().band_not(a, b),
                        _ => self.b.ins().bor_not(a, b),
                    }
                }
                _ => self.b.ins().icmp(int_cc(op, dt.is_signed_int()), a, b),
            });
        }
        Ok(match dt {
            DType::Bool => match op {
                Add | Or | Maximum => self.b.ins().bor(a, b),
                Mul | And | Minimum => self.b.ins().band(a, b),
                Xor => self.b.ins().bxor(a, b),
                _ => return self.unsupported(format!("{op} of bool")),
            },
            DType::I32 | DType::I64 => match op {
                Add => self.b.ins().iadd(a, b),
                Sub => self.b.ins().isub(a, b),
                Mul => self.b.ins().imul(a, b),
                And => self.b.ins().band(a, b),
                Or => self.b.ins().bor(a, b),
                Xor => self.b.ins().bxor(a, b),
                Maximum => {
                    let c = self.b.ins().icmp(IntCC::SignedGreaterThanOrEqual, a, b);
                    self.b.ins().bitselect(c, a, b)
                }
                Minimum => {
                    let c = self.b.ins().icmp(IntCC::SignedLessThanOrEqual, a, b);
                    self.b.ins().bitselect(c, a, b)
                }
                _ => self.per_lane(mode, res, &[a, b], |g, l| g.binary_s(op, dt, l[0], l[1]))?,
            },
            // The other integer types: wrapping add/sub/bitwise and min/max are single vector
            // instructions; x86-64 has no 8-bit lane multiply, so int8/uint8 `*` goes per lane.
            _ if dt.is_int() => match op {
                Add => self.b.ins().iadd(a, b),
                Sub => self.b.ins().isub(a, b),
                Mul if dt.size() > 1 => self.b.ins().imul(a, b),
                And => self.b.ins().band(a, b),
                Or => self.b.ins().bor(a, b),
                Xor => self.b.ins().bxor(a, b),
                Maximum if dt.is_signed_int() => self.b.ins().smax(a, b),
                Minimum if dt.is_signed_int() => self.b.ins().smin(a, b),
                Maximum => self.b.ins().umax(a, b),
                Minimum => self.b.ins().umin(a, b),
                _ => self.per_lane(mode, res, &[a, b], |g, l| g.binary_s(op, dt, l[0], l[1]))?,
            },
            _ => match op {
                Add => self.b.ins().fadd(a, b),
                Sub => self.b.ins().fsub(a, b),
                Mul => self.b.ins().fmul(a, b),
                Div => self.b.ins().fdiv(a, b),
                Maximum | Minimum => {
                    let cc = if op == Maximum {
                        FloatCC::GreaterThan
                    } else {
                        FloatCC::LessThan
                    };
                    let c = self.b.ins().fcmp(cc, a, b);
                    let nan = self.b.ins().fcmp(FloatCC::Unordered, a, a);
                    let c = self.b.ins().bor(c, nan);
                    let c = self.mask_as(c, t);
                    self.b.ins().bitselect(c, a, b)
                }
                Copysign => {
                    // Sign bit of b, the other bits of a.
                    let sign = self.fconst(t, -0.0);
                    self.b.ins().bitselect(sign, b, a)
                }
                _ => self.per_lane(mode, res, &[a, b], |g, l| g.binary_s(op, dt, l[0], l[1]))?,
            },
        })
    }

    /// A cast in the SIMD loop. A bool source is a mask already resized to the target's width
    /// (see [`Gen::body`]); a bool result is a mask of the source's width. Between widths:
    /// integers widen with `swiden_low`/`uwiden_low` (by the source's signedness) and narrow
    /// by keeping each lane's low bytes (wrap-around, as `astype`); float32 and float64 convert
    /// with `fvpromote_low`/`fvdemote`; int32 (and narrower integers, widened to it) converts
    /// to float with `cvtdq2p*`. The rest goes per lane through the scalar cast.
    pub(super) fn cast_v(&mut self, mode: Mode, from: DType, to: DType, x: Value) -> Result<Value> {
        use DType::*;
        let t = mode.ty(to);
        Ok(match (from, to) {
            _ if from == to => x,
            (Bool, _) if to.is_int() => {
                let one = self.iconst(t, 1);
                let m = self.mask_as(x, t);
                self.b.ins().band(m, one)
            }
            (Bool, F32 | F64) => {
                let one = self.fconst(t, 1.0);
                let zero = self.fconst(t, 0.0);
                let m = self.mask_as(x, t);
                self.b.ins().bitselect(m, one, zero)
            }
            (_, Bool) if from.is_int() => {
                let zero = self.iconst(mode.ty(from), 0);
                self.b.ins().icmp(IntCC::NotEqual, x, zero)
            }
            (F32 | F64, Bool) => {
                let zero = self.fconst(mode.ty(from), 0.0);
                self.b.ins().fcmp(FloatCC::NotEqual, x, zero)
            }
            // Same-width integers: the same bits.
            _ if from.is_int() && to.is_int() && from.size() == to.size() => x,
            _ if from.is_int() && to.is_int() && from.size() > to.size() => {
                let (fs, ts) = (from.size(), to.size());
                self.shuffle_bytes(x, t, |b| (b / ts) * fs + b % ts)
            }
            _ if from.is_int() && to.is_int() => self.int_widen(from, to.size(), x),
            (F32, F64) => self.b.ins().fvpromote_low(x),
            (F64, F32) => self.b.ins().fvdemote(x),
            (I32, F32) => self.b.ins().fcvt_from_sint(t, x),
            (I32, F64) => {
                let w = self.b.ins().swiden_low(x);
                self.b.ins().fcvt_from_sint(t, w)
            }
            // Narrower integers are exact in int32 (unsigned ones zero-extended).
            (I8 | U8 | I16 | U16, F32 | F64) => {
                let w = self.int_widen(from, 4, x);
                self.cast_v(mode, I32, to, w)?
            }
            (F32, I32) => {
                let sat = self.b.ins().fcvt_to_sint_sat(t, x);
                let limit = self.fconst(mode.ty(F32), 2147483648.0);
                let ok = self.b.ins().fcmp(FloatCC::LessThan, x, limit);
                let min = self.iconst(t, i32::MIN as i64);
                self.b.ins().bitselect(ok, sat, min)
            }
            _ => self.per_lane(mode, to, &[x], |g, l| Ok(g.cast_s(from, to, l[0])))?,
        })
    }

    /// Integer lanes widened to `size` bytes (sign- or zero-extended by `from`'s signedness),
    /// doubling the width one step at a time.
    fn int_widen(&mut self, from: DType, size: usize, mut x: Value) -> Value {
        let mut w = from.size();
        while w < size {
            x = if from.is_signed_int() {
                self.b.ins().swiden_low(x)
            } else {
                self.b.ins().uwiden_low(x)
            };
            w *= 2;
        }
        x
    }
}
