//! The string front end: numexpr syntax -> [`Expr`].
//!
//! A hand-written lexer and a precedence-climbing (Pratt) parser. Precedence is Python's, as
//! numexpr (which hands the string to Python's parser) sees it, lowest first:
//!
//! | level | operators                    | associativity                    |
//! |-------|------------------------------|----------------------------------|
//! | 1     | `< <= > >= == !=`            | none: `a < b < c` is an error    |
//! | 2     | `\|`                         | left                             |
//! | 3     | `^`                          | left                             |
//! | 4     | `&`                          | left                             |
//! | 5     | `<< >>`                      | left                             |
//! | 6     | `+ -`                        | left                             |
//! | 7     | `* / // %`                   | left                             |
//! | 8     | unary `- + ~`                | prefix                           |
//! | 9     | `**`                         | right; `-x**2` = `-(x**2)`, `2**-1` is valid |
//!
//! Note that comparisons bind *looser* than `& | ^` (Python's rule): `x == 1 | 2` is
//! `x == (1 | 2)`, and `(a > 0) & (b > 0)` needs its parentheses, as in numexpr. Python would
//! chain `a < b < c` into `a < b and b < c`, which numexpr rejects; fusebox rejects it too
//! rather than silently computing `(a < b) < c`.
//!
//! Names are resolved by the caller's `lookup`; `pi`, `e`, `nan` and `inf` are weak float
//! literals unless `lookup` binds them (`nan` and `inf` are not numexpr's, but [`Expr`]'s
//! `Display` prints them, so they are accepted to keep printing and parsing inverse).
//!
//! Reductions are calls with one array and NumPy's keyword arguments: `sum(x*x)`,
//! `mean(a, axis=0)`, `var(a, axis=(0, 1), keepdims=True)`, `std(x, ddof=1)`, `argmax(x,
//! axis=-1)`, `axis=None`; likewise `prod`, `min`, `max`, `any`, `all`, `argmin`. Keywords go
//! after the array; an unknown or repeated keyword, a bad `axis` value, or a second positional
//! argument is a parse error at its column. `max(a, b)` (NumPy would read `b` as the axis) is
//! an error that points to `maximum(a, b)`. Every reduction's `Display` parses back to the
//! same tree. A lone `=` is only valid after a keyword (elsewhere: "did you mean `==`?").
//!
//! Architecture invariant: the parser only builds [`Expr`]s through their public constructors,
//! so every dtype/shape rule lives in `expr.rs`; an inference error is reported (as that error)
//! once the whole string has parsed, so syntax errors come first. Nesting (parentheses, unary chains, `**` chains) and the depth of the
//! built tree are both capped at [`MAX_DEPTH`], so hostile input cannot overflow the stack of
//! the parser or of anything that later walks the tree.
use crate::dtype::{DType, Scalar};
use crate::error::{Error, Result};
use crate::expr::{Expr, ExprKind, ReduceAxes};
use crate::ops::{BinaryOp, ReduceOp, Reduction, UnaryOp};

/// Deepest nesting of the source and of the resulting expression tree.
pub const MAX_DEPTH: usize = 256;

/// Parse `src` (numexpr syntax) into an [`Expr`]. Names are resolved by `lookup` (e.g. to
/// `Expr::data(..)`, `Expr::symbol(..)` or a weak literal); `pi`, `e`, `nan` and `inf` are weak
/// float literals unless `lookup` binds them. Unknown names give [`Error::UnknownName`]; syntax
/// errors give [`Error::Parse`] with a 1-based character column; nesting deeper than
/// [`MAX_DEPTH`] gives [`Error::TooDeep`]. Dtype and shape errors of the built expression (e.g.
/// [`Error::ShapeMismatch`]) are returned as they are.
///
/// ```
/// use fusebox::{parse::parse, DType, Expr};
/// let x = Expr::symbol("x", DType::F64, &[3]);
/// let e = parse("-x**2 + 2*x", &|n| (n == "x").then(|| x.clone())).unwrap();
/// assert_eq!(e.to_string(), "-x ** 2 + 2 * x");
/// ```
pub fn parse(src: &str, lookup: &dyn Fn(&str) -> Option<Expr>) -> Result<Expr> {
    let tokens = lex(src)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        nest: 0,
        lookup,
        check_meta: true,
    };
    let e = p.parse_all()?;
    Ok(e.expr)
}

/// Parse several expressions separated by `;` (`"x.min(); x.max()"` style, as the CLI's
/// `eval` takes them), each as [`parse`] does; a syntax error's column counts from the start of
/// the whole string.
///
/// ```
/// use fusebox::{parse::parse_many, DType, Expr};
/// let x = Expr::symbol("x", DType::F64, &[3]);
/// let es = parse_many("min(x); max(x)", &|n| (n == "x").then(|| x.clone())).unwrap();
/// assert_eq!(es.len(), 2);
/// ```
pub fn parse_many(src: &str, lookup: &dyn Fn(&str) -> Option<Expr>) -> Result<Vec<Expr>> {
    let mut out = Vec::new();
    let mut offset = 0;
    for part in src.split(';') {
        out.push(parse(part, lookup).map_err(|e| match e {
            Error::Parse { column, message } => Error::Parse {
                column: column + offset,
                message,
            },
            e => e,
        })?);
        offset += part.chars().count() + 1;
    }
    Ok(out)
}

/// All identifiers the expression refers to (excluding function names, `astype`'s dtype
/// argument, and the constants `pi`, `e`, `nan`, `inf`), in order of first appearance,
/// deduplicated. Checks the syntax (same errors as [`parse`]) but not dtypes or shapes.
pub fn names(src: &str) -> Result<Vec<String>> {
    let found = std::cell::RefCell::new(Vec::<String>::new());
    let lookup = |n: &str| -> Option<Expr> {
        if CONSTANTS.iter().any(|(c, _)| *c == n) {
            return None;
        }
        let mut f = found.borrow_mut();
        if !f.iter().any(|x| x == n) {
            f.push(n.to_string());
        }
        Some(Expr::symbol(n, DType::F64, &[]))
    };
    let tokens = lex(src)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        nest: 0,
        lookup: &lookup,
        check_meta: false,
    };
    p.parse_all()?;
    drop(p);
    Ok(found.into_inner())
}

/// Names that are weak float literals unless `lookup` binds them.
pub const CONSTANT_NAMES: [&str; 4] = ["pi", "e", "nan", "inf"];

const CONSTANTS: [(&str, f64); 4] = [
    ("pi", std::f64::consts::PI),
    ("e", std::f64::consts::E),
    ("nan", f64::NAN),
    ("inf", f64::INFINITY),
];

// ---- lexer ------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// An integer literal; `u64` so that `-9223372036854775808` can be negated into range.
    Int(u64),
    Float(f64),
    Ident(String),
    Str(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
    End,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// 1-based character column of the token's first character.
    col: usize,
}

const OPERATORS: [&str; 22] = [
    "**", "//", "<<", ">>", "<=", ">=", "==", "!=", "+", "-", "*", "/", "%", "&", "|", "^", "~",
    "<", ">", "=", "!", ".",
];

fn perr(column: usize, message: impl Into<String>) -> Error {
    Error::Parse {
        column,
        message: message.into(),
    }
}

fn lex(src: &str) -> Result<Vec<Token>> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let (tok, end) = lex_number(&chars, i)?;
            out.push(Token { tok, col });
            i = end;
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            out.push(Token {
                tok: Tok::Ident(name),
                col,
            });
            continue;
        }
        if c == '\'' || c == '"' {
            let start = i + 1;
            let mut j = start;
            while j < chars.len() && chars[j] != c {
                j += 1;
            }
            if j == chars.len() {
                return Err(perr(col, "unterminated string literal"));
            }
            out.push(Token {
                tok: Tok::Str(chars[start..j].iter().collect()),
                col,
            });
            i = j + 1;
            continue;
        }
        let simple = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            ',' => Some(Tok::Comma),
            _ => None,
        };
        if let Some(tok) = simple {
            out.push(Token { tok, col });
            i += 1;
            continue;
        }
        let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
        let op = OPERATORS
            .iter()
            .find(|op| op.len() == 2 && two == **op)
            .or_else(|| {
                OPERATORS
                    .iter()
                    .find(|op| op.len() == 1 && op.starts_with(c))
            });
        match op {
            Some(&"!") => return Err(perr(col, "unexpected `!` (use `~` for logical not)")),
            Some(&".") => {
                return Err(perr(
                    col,
                    "unexpected `.` (methods and attributes are not supported)",
                ))
            }
            Some(op) => {
                out.push(Token {
                    tok: Tok::Op(op),
                    col,
                });
                i += op.len();
            }
            None => return Err(perr(col, format!("unexpected character `{c}`"))),
        }
    }
    out.push(Token {
        tok: Tok::End,
        col: chars.len() + 1,
    });
    Ok(out)
}

/// A number starting at `chars[i]`: `12`, `1.`, `.5`, `1e-3`, `1E+3`. Returns the token and the
/// index after it.
fn lex_number(chars: &[char], start: usize) -> Result<(Tok, usize)> {
    let col = start + 1;
    let mut i = start;
    let digits = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_ascii_digit() {
            *i += 1;
        }
    };
    digits(&mut i);
    let mut is_float = false;
    if i < chars.len() && chars[i] == '.' {
        is_float = true;
        i += 1;
        digits(&mut i);
    }
    if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
        let mut j = i + 1;
        if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
            j += 1;
        }
        if j < chars.len() && chars[j].is_ascii_digit() {
            is_float = true;
            i = j;
            digits(&mut i);
        } else {
            return Err(perr(i + 1, "malformed exponent in number"));
        }
    }
    if i < chars.len() && (chars[i] == 'j' || chars[i] == 'J') {
        return Err(perr(col, "complex literals are not supported"));
    }
    if i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
        return Err(perr(
            i + 1,
            format!("unexpected `{}` after number", chars[i]),
        ));
    }
    let text: String = chars[start..i].iter().collect();
    let tok = if is_float {
        Tok::Float(
            text.parse::<f64>()
                .map_err(|_| perr(col, format!("malformed number `{text}`")))?,
        )
    } else {
        match text.parse::<u64>() {
            Ok(v) if v <= i64::MAX as u64 + 1 => Tok::Int(v),
            _ => {
                return Err(perr(
                    col,
                    format!("integer literal {text} does not fit in int64"),
                ))
            }
        }
    };
    Ok((tok, i))
}

// ---- parser -----------------------------------------------------------------------------

/// An expression under construction with the depth of its tree.
struct Built {
    expr: Expr,
    depth: usize,
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    /// Current nesting (parentheses, calls, unary operators, `**` right operands).
    nest: usize,
    lookup: &'a dyn Fn(&str) -> Option<Expr>,
    /// Report dtype/shape errors of built nodes (off for [`names`], which only checks syntax).
    check_meta: bool,
}

/// Binary operators of levels 1..=7 with their level (see the module table).
fn binary_op(tok: &Tok) -> Option<(BinaryOp, u8)> {
    use BinaryOp::*;
    let Tok::Op(s) = tok else { return None };
    Some(match *s {
        "<" => (Lt, 1),
        "<=" => (Le, 1),
        ">" => (Gt, 1),
        ">=" => (Ge, 1),
        "==" => (Eq, 1),
        "!=" => (Ne, 1),
        "|" => (Or, 2),
        "^" => (Xor, 3),
        "&" => (And, 4),
        "<<" => (Shl, 5),
        ">>" => (Shr, 5),
        "+" => (Add, 6),
        "-" => (Sub, 6),
        "*" => (Mul, 7),
        "/" => (Div, 7),
        "//" => (FloorDiv, 7),
        "%" => (Rem, 7),
        _ => return None,
    })
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Int(v) => format!("`{v}`"),
        Tok::Float(v) => format!("`{v}`"),
        Tok::Ident(n) => format!("`{n}`"),
        Tok::Str(s) => format!("string '{s}'"),
        // `=` only follows a keyword in a call (`sum(x, axis=1)`).
        Tok::Op("=") => "`=` (did you mean `==`?)".into(),
        Tok::Op(o) => format!("`{o}`"),
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::Comma => "`,`".into(),
        Tok::End => "end of expression".into(),
    }
}

enum Func {
    Unary(UnaryOp),
    Binary(BinaryOp),
    Where,
    Identity,
    Imag,
    OnesLike,
    /// A reduction (`var`/`std` with `ddof = 0` until the call says otherwise).
    Reduce(Reduction),
    Astype,
    /// `isnan`, `isinf`, `isfinite`, `signbit` (see [`Expr::isnan`]).
    Predicate(fn(&Expr) -> Expr),
}

fn function(name: &str) -> Option<Func> {
    use UnaryOp as U;
    let u = |op| Some(Func::Unary(op));
    let b = |op| Some(Func::Binary(op));
    match name {
        "sin" => u(U::Sin),
        "cos" => u(U::Cos),
        "tan" => u(U::Tan),
        "arcsin" => u(U::Arcsin),
        "arccos" => u(U::Arccos),
        "arctan" => u(U::Arctan),
        "sinh" => u(U::Sinh),
        "cosh" => u(U::Cosh),
        "tanh" => u(U::Tanh),
        "arcsinh" => u(U::Arcsinh),
        "arccosh" => u(U::Arccosh),
        "arctanh" => u(U::Arctanh),
        "log" => u(U::Log),
        "log10" => u(U::Log10),
        "log1p" => u(U::Log1p),
        "log2" => u(U::Log2),
        "exp" => u(U::Exp),
        "expm1" => u(U::Expm1),
        "sqrt" => u(U::Sqrt),
        "abs" | "absolute" => u(U::Abs),
        "ceil" => u(U::Ceil),
        "floor" => u(U::Floor),
        "round" | "rint" => u(U::Round),
        "trunc" => u(U::Trunc),
        "sign" => u(U::Sign),
        "negative" => u(U::Neg),
        "invert" => u(U::Not),
        "arctan2" => b(BinaryOp::Arctan2),
        "fmod" => b(BinaryOp::Fmod),
        "mod" | "remainder" => b(BinaryOp::Rem),
        "floor_divide" => b(BinaryOp::FloorDiv),
        "copysign" => b(BinaryOp::Copysign),
        "nextafter" => b(BinaryOp::Nextafter),
        "hypot" => b(BinaryOp::Hypot),
        "maximum" => b(BinaryOp::Maximum),
        "minimum" => b(BinaryOp::Minimum),
        "pow" | "power" => b(BinaryOp::Pow),
        "where" => Some(Func::Where),
        "conj" | "conjugate" | "real" | "copy" => Some(Func::Identity),
        "imag" => Some(Func::Imag),
        "ones_like" => Some(Func::OnesLike),
        "astype" => Some(Func::Astype),
        "isnan" => Some(Func::Predicate(Expr::isnan)),
        "isinf" => Some(Func::Predicate(Expr::isinf)),
        "isfinite" => Some(Func::Predicate(Expr::isfinite)),
        "signbit" => Some(Func::Predicate(Expr::signbit)),
        _ => Reduction::from_name(name, 0).map(Func::Reduce),
    }
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.tokens[self.pos]
    }
    fn next(&mut self) -> Token {
        let t = self.tokens[self.pos].clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        t
    }
    fn enter(&mut self) -> Result<()> {
        self.nest += 1;
        if self.nest > MAX_DEPTH {
            return Err(Error::TooDeep { limit: MAX_DEPTH });
        }
        Ok(())
    }
    fn leave(&mut self) {
        self.nest -= 1;
    }

    /// Wrap a freshly built node: check the tree depth and (when asked) its dtype/shape.
    fn node(&self, expr: Expr, children: &[&Built]) -> Result<Built> {
        let depth = match expr.kind() {
            ExprKind::Literal(_) => 1,
            _ => 1 + children.iter().map(|c| c.depth).max().unwrap_or(0),
        };
        if depth > MAX_DEPTH {
            return Err(Error::TooDeep { limit: MAX_DEPTH });
        }
        Ok(Built { expr, depth })
    }

    fn parse_all(&mut self) -> Result<Built> {
        if self.peek().tok == Tok::End {
            return Err(perr(self.peek().col, "empty expression"));
        }
        let e = self.parse_binary(1)?;
        let t = self.peek().clone();
        if t.tok != Tok::End {
            let msg = match &t.tok {
                Tok::RParen => "unmatched `)`".to_string(),
                Tok::Ident(k) if matches!(k.as_str(), "and" | "or" | "not") => {
                    format!("`{k}` is not supported: use `&`, `|` and `~`")
                }
                other => format!("unexpected {} after a complete expression", describe(other)),
            };
            return Err(perr(t.col, msg));
        }
        // Syntax first, then types: a node's inference error is carried up to the root.
        if self.check_meta {
            e.expr.meta()?;
        }
        Ok(e)
    }

    /// Binary operators of level `min` and above (levels 1..=7), left-associative.
    fn parse_binary(&mut self, min: u8) -> Result<Built> {
        let mut lhs = self.parse_unary()?;
        let mut chained_cmp = false;
        while let Some((op, level)) = binary_op(&self.peek().tok) {
            if level < min {
                break;
            }
            let op_tok = self.next();
            if level == 1 {
                if chained_cmp {
                    return Err(perr(
                        op_tok.col,
                        "chained comparisons (a < b < c) are not supported; \
                         write (a < b) & (b < c)",
                    ));
                }
                chained_cmp = true;
            }
            let rhs = self.parse_binary(level + 1)?;
            let e = Expr::binary(op, lhs.expr.clone(), rhs.expr.clone());
            lhs = self.node(e, &[&lhs, &rhs])?;
        }
        Ok(lhs)
    }

    /// Prefix `- + ~`, then `**`.
    fn parse_unary(&mut self) -> Result<Built> {
        let t = self.peek().clone();
        let op = match t.tok {
            Tok::Op("-") => Some(UnaryOp::Neg),
            Tok::Op("~") => Some(UnaryOp::Not),
            Tok::Op("+") => None,
            _ => return self.parse_power(),
        };
        self.next();
        // `-9223372036854775808` is i64::MIN, as a literal, unless `**` binds the number first.
        if let (Some(UnaryOp::Neg), Tok::Int(v)) = (op, &self.peek().tok) {
            let v = *v;
            let pow_follows = matches!(
                self.tokens.get(self.pos + 1),
                Some(Token {
                    tok: Tok::Op("**"),
                    ..
                })
            );
            if v == i64::MAX as u64 + 1 && !pow_follows {
                self.next();
                return self.node(Expr::from(i64::MIN), &[]);
            }
        }
        self.enter()?;
        let x = self.parse_unary()?;
        self.leave();
        match op {
            Some(op) => {
                let e = Expr::unary(op, x.expr.clone());
                self.node(e, &[&x])
            }
            // Unary plus: NumPy's `positive`, which rejects bool.
            None => {
                if self.check_meta && x.expr.dtype().ok() == Some(DType::Bool) {
                    return Err(Error::OperandType {
                        op: "positive".into(),
                        dtype: DType::Bool,
                        reason: "unary `+` is not supported for bool (NumPy raises)".into(),
                    });
                }
                Ok(x)
            }
        }
    }

    /// `primary ['**' unary]`: right-associative, and tighter than a unary minus on its left.
    fn parse_power(&mut self) -> Result<Built> {
        let base = self.parse_primary()?;
        if self.peek().tok == Tok::Op("**") {
            self.next();
            self.enter()?;
            let exp = self.parse_unary()?;
            self.leave();
            let e = Expr::binary(BinaryOp::Pow, base.expr.clone(), exp.expr.clone());
            return self.node(e, &[&base, &exp]);
        }
        Ok(base)
    }

    fn parse_primary(&mut self) -> Result<Built> {
        let t = self.next();
        match t.tok {
            Tok::Int(v) => {
                let v = i64::try_from(v).map_err(|_| {
                    perr(t.col, format!("integer literal {v} does not fit in int64"))
                })?;
                self.node(Expr::from(v), &[])
            }
            Tok::Float(v) => self.node(Expr::from(v), &[]),
            Tok::LParen => {
                self.enter()?;
                let e = self.parse_binary(1)?;
                self.leave();
                let close = self.next();
                if close.tok != Tok::RParen {
                    return Err(perr(
                        close.col,
                        format!("expected `)`, found {}", describe(&close.tok)),
                    ));
                }
                Ok(e)
            }
            Tok::Ident(name) => {
                if self.peek().tok == Tok::LParen {
                    return self.parse_call(&name, t.col);
                }
                self.name(&name, t.col)
            }
            Tok::End => Err(perr(t.col, "unexpected end of expression")),
            other => Err(perr(
                t.col,
                format!("expected an expression, found {}", describe(&other)),
            )),
        }
    }

    fn name(&self, name: &str, col: usize) -> Result<Built> {
        match name {
            "True" => return self.node(Expr::from(true), &[]),
            "False" => return self.node(Expr::from(false), &[]),
            "and" | "or" | "not" => {
                return Err(perr(
                    col,
                    format!("`{name}` is not supported: use `&`, `|` and `~`"),
                ))
            }
            _ => {}
        }
        if let Some(e) = (self.lookup)(name) {
            return self.node(e, &[]);
        }
        if let Some((_, v)) = CONSTANTS.iter().find(|(c, _)| *c == name) {
            return self.node(Expr::from(*v), &[]);
        }
        if function(name).is_some() {
            return Err(perr(
                col,
                format!("function `{name}` needs arguments: `{name}(...)`"),
            ));
        }
        Err(Error::UnknownName {
            name: name.to_string(),
            known: vec![],
        })
    }

    /// `name(args...)`; the current token is `(`.
    fn parse_call(&mut self, name: &str, col: usize) -> Result<Built> {
        let Some(func) = function(name) else {
            let msg = match name {
                "contains" => {
                    "`contains` works on strings only; fusebox has no string arrays".to_string()
                }
                _ => format!("unknown function `{name}`"),
            };
            return Err(perr(col, msg));
        };
        self.next(); // `(`
        self.enter()?;
        let mut args: Vec<Built> = Vec::new();
        let mut dtype_arg: Option<DType> = None;
        let mut kw = Keywords::default();
        if self.peek().tok != Tok::RParen {
            loop {
                let keyword = match (&self.peek().tok, self.tokens.get(self.pos + 1)) {
                    (
                        Tok::Ident(k),
                        Some(Token {
                            tok: Tok::Op("="), ..
                        }),
                    ) => Some(k.clone()),
                    _ => None,
                };
                if let Some(k) = keyword {
                    let kcol = self.next().col;
                    self.next(); // `=`
                    self.keyword(&func, name, &k, kcol, &mut kw)?;
                } else if kw.any {
                    return Err(perr(
                        self.peek().col,
                        "positional argument follows keyword argument",
                    ));
                } else if matches!(func, Func::Astype) && args.len() == 1 && dtype_arg.is_none() {
                    dtype_arg = Some(self.dtype_arg()?);
                } else {
                    args.push(self.parse_binary(1)?);
                }
                if self.peek().tok == Tok::Comma {
                    self.next();
                    continue;
                }
                break;
            }
        }
        let close = self.next();
        if close.tok != Tok::RParen {
            return Err(perr(
                close.col,
                format!(
                    "expected `,` or `)` in call to `{name}`, found {}",
                    describe(&close.tok)
                ),
            ));
        }
        self.leave();
        if let Func::Reduce(r) = func {
            return self.reduction(r, name, col, args, kw);
        }
        let n_args = args.len() + usize::from(dtype_arg.is_some());
        let want = match func {
            Func::Unary(_)
            | Func::Identity
            | Func::Imag
            | Func::OnesLike
            | Func::Reduce(_)
            | Func::Predicate(_) => 1,
            Func::Binary(_) | Func::Astype => 2,
            Func::Where => 3,
        };
        if n_args != want {
            let s = if want == 1 { "" } else { "s" };
            return Err(perr(
                col,
                format!("`{name}` takes {want} argument{s}, got {n_args}"),
            ));
        }
        let a = &args[0];
        let e = match func {
            Func::Unary(op) => Expr::unary(op, a.expr.clone()),
            Func::Binary(op) => Expr::binary(op, a.expr.clone(), args[1].expr.clone()),
            Func::Where => Expr::select(a.expr.clone(), args[1].expr.clone(), args[2].expr.clone()),
            Func::Identity => {
                return Ok(Built {
                    expr: a.expr.clone(),
                    depth: a.depth,
                })
            }
            Func::Imag => return self.filled(a, 0),
            Func::Predicate(f) => {
                // Up to three nodes over the argument (`copysign(1, x) < 0`).
                let depth = a.depth + 3;
                if depth > MAX_DEPTH {
                    return Err(Error::TooDeep { limit: MAX_DEPTH });
                }
                return Ok(Built {
                    expr: f(&a.expr),
                    depth,
                });
            }
            Func::OnesLike => return self.filled(a, 1),
            Func::Reduce(_) => unreachable!("reductions returned above"),
            Func::Astype => match dtype_arg {
                Some(d) => a.expr.astype(d),
                None => unreachable!("arity checked above"),
            },
        };
        let children: Vec<&Built> = args.iter().collect();
        self.node(e, &children)
    }

    /// A keyword argument `key=value` of a call (the current token is the value): `axis`,
    /// `keepdims` and (for `var`/`std`) `ddof` of reductions; no other function takes any.
    fn keyword(
        &mut self,
        func: &Func,
        fname: &str,
        key: &str,
        col: usize,
        kw: &mut Keywords,
    ) -> Result<()> {
        let Func::Reduce(r) = func else {
            return Err(perr(
                col,
                format!("`{fname}` takes no keyword arguments (got `{key}=`)"),
            ));
        };
        let takes_ddof = matches!(r, Reduction::Var { .. } | Reduction::Std { .. });
        let repeated = || perr(col, format!("keyword argument `{key}` repeated"));
        kw.any = true;
        match key {
            "axis" => {
                if kw.axis.is_some() {
                    return Err(repeated());
                }
                kw.axis = Some(self.axis_value()?);
            }
            "keepdims" => {
                if kw.keepdims.is_some() {
                    return Err(repeated());
                }
                let t = self.next();
                kw.keepdims = Some(match &t.tok {
                    Tok::Ident(v) if v == "True" => true,
                    Tok::Ident(v) if v == "False" => false,
                    other => {
                        return Err(perr(
                            t.col,
                            format!("`keepdims` must be True or False, not {}", describe(other)),
                        ))
                    }
                });
            }
            "ddof" if takes_ddof => {
                if kw.ddof.is_some() {
                    return Err(repeated());
                }
                let t = self.next();
                kw.ddof = Some(match t.tok {
                    Tok::Int(v) => u32::try_from(v)
                        .map_err(|_| perr(t.col, format!("`ddof` {v} is too large")))?,
                    other => {
                        return Err(perr(
                            t.col,
                            format!(
                                "`ddof` must be a non-negative integer, not {}",
                                describe(&other)
                            ),
                        ))
                    }
                });
            }
            _ => {
                let known = if takes_ddof {
                    "axis, keepdims, ddof"
                } else {
                    "axis, keepdims"
                };
                return Err(perr(
                    col,
                    format!("unknown keyword argument `{key}` for `{fname}` (it takes {known})"),
                ));
            }
        }
        Ok(())
    }

    /// An `axis=` value: an integer, a tuple of integers (`(0, 1)`, `(1,)`, `()`), or `None`.
    fn axis_value(&mut self) -> Result<Option<Vec<isize>>> {
        let t = self.peek().clone();
        match t.tok {
            Tok::Ident(ref v) if v == "None" => {
                self.next();
                Ok(None)
            }
            Tok::LParen => {
                self.next();
                let mut axes = Vec::new();
                while self.peek().tok != Tok::RParen {
                    axes.push(self.axis_int()?);
                    match self.peek().tok {
                        Tok::Comma => {
                            self.next();
                        }
                        Tok::RParen => {}
                        ref other => {
                            return Err(perr(
                                self.peek().col,
                                format!(
                                    "expected `,` or `)` in axis tuple, found {}",
                                    describe(other)
                                ),
                            ))
                        }
                    }
                }
                self.next(); // `)`
                Ok(Some(axes))
            }
            _ => Ok(Some(vec![self.axis_int()?])),
        }
    }

    /// An integer axis, `-` allowed.
    fn axis_int(&mut self) -> Result<isize> {
        let t = self.next();
        let (neg, v) = match t.tok {
            Tok::Op("-") => {
                let n = self.next();
                match n.tok {
                    Tok::Int(v) => (true, v),
                    other => return Err(bad_axis(n.col, &other)),
                }
            }
            Tok::Int(v) => (false, v),
            other => return Err(bad_axis(t.col, &other)),
        };
        let v = i64::try_from(v)
            .ok()
            .and_then(|v| isize::try_from(v).ok())
            .ok_or_else(|| perr(t.col, format!("axis {v} is out of range")))?;
        Ok(if neg { -v } else { v })
    }

    /// `sum(x, axis=..., keepdims=...)` and the other reductions: one positional argument.
    fn reduction(
        &self,
        r: Reduction,
        name: &str,
        col: usize,
        args: Vec<Built>,
        kw: Keywords,
    ) -> Result<Built> {
        match args.len() {
            1 => {}
            0 => return Err(perr(col, format!("`{name}` takes 1 argument, got 0"))),
            n => {
                let msg = match r {
                    Reduction::Op(op @ (ReduceOp::Max | ReduceOp::Min)) => {
                        let f = if op == ReduceOp::Max {
                            "maximum"
                        } else {
                            "minimum"
                        };
                        format!(
                            "`{name}` reduces one array (got {n} arguments): for the \
                             element-wise {f} write `{f}(a, b)`, for an axis `{name}(a, axis=1)`"
                        )
                    }
                    _ => format!(
                        "`{name}` takes 1 array argument, got {n} (give the axis as `axis=...`)"
                    ),
                };
                return Err(perr(col, msg));
            }
        }
        let ddof = kw.ddof.unwrap_or(0);
        let r = match r {
            Reduction::Var { .. } => Reduction::Var { ddof },
            Reduction::Std { .. } => Reduction::Std { ddof },
            other => other,
        };
        let spec = ReduceAxes {
            axes: kw.axis.unwrap_or(None),
            keepdims: kw.keepdims.unwrap_or(false),
        };
        let x = &args[0];
        self.node(x.expr.reduce_with(r, spec), &[x])
    }

    /// `astype`'s second argument: a dtype name, bare (`float32`) or quoted (`'int64'`).
    fn dtype_arg(&mut self) -> Result<DType> {
        let t = self.next();
        let name = match &t.tok {
            Tok::Ident(n) | Tok::Str(n) => n.clone(),
            other => {
                return Err(perr(
                    t.col,
                    format!("expected a dtype name, found {}", describe(other)),
                ))
            }
        };
        DType::parse(&name).map_err(|_| {
            perr(
                t.col,
                format!(
                    "unknown dtype `{name}` (bool, int8, int16, int32, int64, uint8, uint16, \
                     uint32, uint64, float32, float64)"
                ),
            )
        })
    }

    /// An array of `value` with `x`'s dtype and shape (`imag` of a real array is zeros,
    /// `ones_like` is ones). Built as `astype(where(x == x, v, v), dtype)`: both branches are
    /// `v`, so the result is `v` for every element whatever the condition is (NaN included);
    /// the condition only carries the shape. A weak literal gives a weak literal of its kind.
    fn filled(&self, x: &Built, value: i64) -> Result<Built> {
        let meta = match x.expr.meta() {
            Ok(m) => m.clone(),
            // The error is carried up and reported once the syntax is known to be right.
            Err(_) => {
                return Ok(Built {
                    expr: x.expr.clone(),
                    depth: x.depth,
                })
            }
        };
        if let Some(s) = meta.weak {
            let lit = match s {
                Scalar::Bool(_) => Scalar::Bool(value != 0),
                Scalar::Int(_) => Scalar::Int(value),
                Scalar::Float(_) => Scalar::Float(value as f64),
            };
            return self.node(Expr::literal(lit), &[]);
        }
        let cond = Expr::binary(BinaryOp::Eq, x.expr.clone(), x.expr.clone());
        let e = Expr::select(cond, Expr::from(value), Expr::from(value)).astype(meta.dtype);
        let depth = x.depth + 3;
        if depth > MAX_DEPTH {
            return Err(Error::TooDeep { limit: MAX_DEPTH });
        }
        Ok(Built { expr: e, depth })
    }
}

/// The keyword arguments of a reduction call, each given at most once.
#[derive(Default)]
struct Keywords {
    /// Whether any keyword was given (positional arguments may not follow).
    any: bool,
    /// `Some(None)`: `axis=None`.
    axis: Option<Option<Vec<isize>>>,
    keepdims: Option<bool>,
    ddof: Option<u32>,
}

fn bad_axis(col: usize, found: &Tok) -> Error {
    perr(
        col,
        format!(
            "bad axis value {}: expected an integer, a tuple of integers or None",
            describe(found)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexes_numbers() {
        let toks: Vec<Tok> = lex("1. .5 1e-3 1E+3 12")
            .unwrap()
            .into_iter()
            .map(|t| t.tok)
            .collect();
        assert_eq!(
            toks,
            vec![
                Tok::Float(1.0),
                Tok::Float(0.5),
                Tok::Float(1e-3),
                Tok::Float(1e3),
                Tok::Int(12),
                Tok::End
            ]
        );
    }
}
