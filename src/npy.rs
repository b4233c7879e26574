//! `.npy` files <-> [`DynArray`], for the CLI and for tests against NumPy.
//!
//! Reading is two steps. First fusebox reads the header itself, with a bound on its length
//! ([`MAX_HEADER_LEN`]), to learn the dtype (`descr`) and the shape, and checks that the file
//! holds exactly the bytes the shape needs (so a hostile header cannot make us allocate more
//! than the file's size). Then ndarray-npy's typed reader (`ReadNpyExt`) reads the data, in C or
//! Fortran order. Supported dtypes: `|b1`, `|i1`, `<i2`, `<i4`, `<i8`, `|u1`, `<u2`, `<u4`,
//! `<u8`, `<f2`, `<f4`, `<f8` (and their big-endian forms, which ndarray-npy converts); anything else
//! is [`Error::UnsupportedDtype`] naming the descr. Every other failure is [`Error::Npy`] with
//! the path and the reason.
use crate::array::{DynArray, Element};
use crate::dtype::DType;
use crate::error::{Error, Result};
use ndarray::ArrayD;
use ndarray_npy::{ReadNpyExt, ReadableElement, WritableElement, WriteNpyExt};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom};
use std::path::Path;

/// The longest header accepted (NumPy writes a few hundred bytes at most).
pub const MAX_HEADER_LEN: usize = 64 * 1024;

/// What the header says.
#[derive(Debug, Clone, PartialEq)]
struct Header {
    descr: String,
    shape: Vec<usize>,
    /// Bytes before the data (magic, version, length field, header text).
    data_offset: u64,
}

/// An [`Error::Npy`] for the file at `path` (`None`: bytes in memory).
fn npy_err(path: Option<&Path>, reason: impl std::fmt::Display) -> Error {
    Error::Npy {
        path: path.map(Path::to_path_buf),
        message: reason.to_string(),
    }
}

/// Read a `.npy` file of any fusebox dtype (bool, int8..int64, uint8..uint64, float16,
/// float32, float64), any shape (0-d included), C or Fortran order.
pub fn read_npy(path: &Path) -> Result<DynArray> {
    let file = File::open(path).map_err(|e| npy_err(Some(path), e))?;
    let file_len = file.metadata().map_err(|e| npy_err(Some(path), e))?.len();
    read_from(BufReader::new(file), file_len, Some(path))
}

/// [`read_npy`] from bytes in memory (the same checks; errors have no path and print
/// `<memory>`).
pub fn read_npy_bytes(bytes: &[u8]) -> Result<DynArray> {
    read_from(std::io::Cursor::new(bytes), bytes.len() as u64, None)
}

/// Read from `reader` (positioned at the start of `len` bytes of `.npy` data) of the file at
/// `path` (`None`: memory).
fn read_from<R: Read + Seek>(mut reader: R, len: u64, path: Option<&Path>) -> Result<DynArray> {
    let header = read_header(&mut reader).map_err(|reason| npy_err(path, reason))?;
    let dtype = match header.descr.as_str() {
        "|b1" => DType::Bool,
        "|i1" | "<i1" | ">i1" => DType::I8,
        "<i2" | ">i2" => DType::I16,
        "<i4" | ">i4" => DType::I32,
        "<i8" | ">i8" => DType::I64,
        "|u1" | "<u1" | ">u1" => DType::U8,
        "<u2" | ">u2" => DType::U16,
        "<u4" | ">u4" => DType::U32,
        "<u8" | ">u8" => DType::U64,
        "<f2" | ">f2" => DType::F16,
        "<f4" | ">f4" => DType::F32,
        "<f8" | ">f8" => DType::F64,
        other => {
            return Err(Error::UnsupportedDtype {
                dtype: other.to_string(),
                context: format!(
                    ".npy descr of {} (supported: |b1, |i1, <i2, <i4, <i8, |u1, <u2, <u4, <u8, <f2, <f4, <f8)",
                    path.map_or("<memory>".into(), |p| p.display().to_string())
                ),
            })
        }
    };
    let need = header
        .shape
        .iter()
        .try_fold(dtype.size() as u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| npy_err(path, format!("shape {:?} is too large", header.shape)))?;
    let have = len.saturating_sub(header.data_offset);
    if have != need {
        return Err(npy_err(
            path,
            format!(
                "file holds {have} data bytes, but shape {:?} of {dtype} needs {need}",
                header.shape
            ),
        ));
    }
    // ndarray wants the product of the non-zero axis lengths to fit `isize` (an empty array
    // may still have huge axes); check it here so its reader gets only shapes it accepts.
    let nonzero: Vec<usize> = header.shape.iter().copied().filter(|&d| d != 0).collect();
    crate::array::checked_len(&nonzero, 1).map_err(|e| npy_err(path, e))?;
    // The header was only peeked at; ndarray-npy reads the data again from the start.
    reader
        .seek(SeekFrom::Start(0))
        .map_err(|e| npy_err(path, e))?;
    match dtype {
        DType::Bool => typed::<bool>(reader, path),
        DType::I32 => typed::<i32>(reader, path),
        DType::I64 => typed::<i64>(reader, path),
        DType::I8 => typed::<i8>(reader, path),
        DType::I16 => typed::<i16>(reader, path),
        DType::U8 => typed::<u8>(reader, path),
        DType::U16 => typed::<u16>(reader, path),
        DType::U32 => typed::<u32>(reader, path),
        DType::U64 => typed::<u64>(reader, path),
        DType::F16 => read_f16(reader, header.data_offset, path),
        DType::F32 => typed::<f32>(reader, path),
        DType::F64 => typed::<f64>(reader, path),
    }
}

/// float16 data, which ndarray-npy has no element type for: the header's descr `f2` becomes
/// `u2` (same length, same data) in a copy of the bytes, ndarray-npy reads the bits (byte
/// order and C or Fortran order as for any dtype), and each becomes an `f16`.
fn read_f16(mut reader: impl Read, data_offset: u64, path: Option<&Path>) -> Result<DynArray> {
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| npy_err(path, e))?;
    let end = (data_offset as usize).min(bytes.len());
    retag(&mut bytes[..end], b"f2'", b"u2'").map_err(|e| npy_err(path, e))?;
    let bits =
        ArrayD::<u16>::read_npy(std::io::Cursor::new(bytes)).map_err(|e| npy_err(path, e))?;
    Ok(bits.mapv(crate::f16::from_bits).into())
}

/// Replace the first `from` in a header by `to` (same length).
fn retag(header: &mut [u8], from: &[u8], to: &[u8]) -> std::result::Result<(), String> {
    let at = header
        .windows(from.len())
        .position(|w| w == from)
        .ok_or("float16 descr not found in the header")?;
    header[at..at + to.len()].copy_from_slice(to);
    Ok(())
}

fn typed<T: Element + ReadableElement>(reader: impl Read, path: Option<&Path>) -> Result<DynArray> {
    let a = ArrayD::<T>::read_npy(reader).map_err(|e| npy_err(path, e))?;
    Ok(a.into())
}

/// Write `a` as a `.npy` file (C order, or Fortran order when that is how `a` is laid out).
pub fn write_npy(path: &Path, a: &DynArray) -> Result<()> {
    fn go<T: Element + WritableElement>(
        path: &Path,
        a: &ndarray::ArcArray<T, ndarray::IxDyn>,
    ) -> Result<()> {
        let file = File::create(path).map_err(|e| npy_err(Some(path), e))?;
        a.write_npy(BufWriter::new(file))
            .map_err(|e| npy_err(Some(path), e))
    }
    match a {
        DynArray::Bool(x) => go(path, x),
        DynArray::I32(x) => go(path, x),
        DynArray::I64(x) => go(path, x),
        DynArray::I8(x) => go(path, x),
        DynArray::I16(x) => go(path, x),
        DynArray::U8(x) => go(path, x),
        DynArray::U16(x) => go(path, x),
        DynArray::U32(x) => go(path, x),
        DynArray::U64(x) => go(path, x),
        DynArray::F16(x) => {
            // As `<u2` bits, then the header's descr says `<f2` (see `read_f16`).
            let mut bytes = Vec::new();
            x.mapv(|v| v.to_bits())
                .write_npy(&mut bytes)
                .map_err(|e| npy_err(Some(path), e))?;
            let end = header_len(&bytes);
            retag(&mut bytes[..end], b"u2'", b"f2'").map_err(|e| npy_err(Some(path), e))?;
            std::fs::write(path, bytes).map_err(|e| npy_err(Some(path), e))
        }
        DynArray::F32(x) => go(path, x),
        DynArray::F64(x) => go(path, x),
    }
}

/// Bytes before the data of a `.npy` file written by ndarray-npy (version 1, 2 or 3).
fn header_len(bytes: &[u8]) -> usize {
    let n = match bytes.get(6) {
        Some(1) => bytes
            .get(8..10)
            .map_or(0, |b| 10 + u16::from_le_bytes([b[0], b[1]]) as usize),
        _ => bytes.get(8..12).map_or(0, |b| {
            12 + u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
        }),
    };
    n.min(bytes.len())
}

/// Parse the magic string, version, and header dictionary (`descr` and `shape`).
fn read_header(r: &mut impl Read) -> std::result::Result<Header, String> {
    let mut pre = [0u8; 8];
    r.read_exact(&mut pre)
        .map_err(|e| format!("not a .npy file (too short: {e})"))?;
    if &pre[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (bad magic string)".into());
    }
    let (len, offset) = match pre[6] {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).map_err(|e| e.to_string())?;
            (u16::from_le_bytes(b) as usize, 10u64)
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b).map_err(|e| e.to_string())?;
            (u32::from_le_bytes(b) as usize, 12u64)
        }
        v => return Err(format!("unsupported .npy format version {v}.{}", pre[7])),
    };
    if len > MAX_HEADER_LEN {
        return Err(format!(
            "header of {len} bytes is longer than the {MAX_HEADER_LEN} accepted"
        ));
    }
    let mut text = vec![0u8; len];
    r.read_exact(&mut text)
        .map_err(|e| format!("truncated header ({e})"))?;
    let text = String::from_utf8(text).map_err(|_| "header is not UTF-8".to_string())?;
    let descr = dict_value(&text, "descr").ok_or("header has no 'descr'")?;
    let descr = match descr.strip_prefix('\'').or_else(|| descr.strip_prefix('"')) {
        Some(rest) => rest
            .find(['\'', '"'])
            .map(|end| rest[..end].to_string())
            .ok_or("malformed 'descr'")?,
        // A list: a structured dtype. Report it as written.
        None => descr_raw(descr),
    };
    let shape_text = dict_value(&text, "shape").ok_or("header has no 'shape'")?;
    let shape = parse_shape(shape_text).ok_or_else(|| format!("malformed 'shape' in {text:?}"))?;
    Ok(Header {
        descr,
        shape,
        data_offset: offset + len as u64,
    })
}

/// The text after `'key':` (up to the end of the header).
fn dict_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    for q in ['\'', '"'] {
        let pat = format!("{q}{key}{q}");
        if let Some(i) = text.find(&pat) {
            let rest = text[i + pat.len()..].trim_start();
            return Some(rest.strip_prefix(':')?.trim_start());
        }
    }
    None
}

/// A bracketed value as written, up to its matching bracket.
fn descr_raw(s: &str) -> String {
    let mut depth = 0i32;
    for (i, c) in s.char_indices() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => {
                depth -= 1;
                if depth <= 0 {
                    return s[..=i].to_string();
                }
            }
            ',' | '}' if depth == 0 => return s[..i].trim().to_string(),
            _ => {}
        }
    }
    s.trim().to_string()
}

/// `(3, 4)`, `(5,)`, `()`.
fn parse_shape(s: &str) -> Option<Vec<usize>> {
    let inner = s.strip_prefix('(')?;
    let inner = &inner[..inner.find(')')?];
    inner
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| p.trim_end_matches('L').parse::<usize>().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr0, arr1, arr2, Array, IxDyn, ShapeBuilder};

    /// A fixture written once by NumPy 2.4 (`tests/data/`).
    fn fixture(name: &str) -> DynArray {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name);
        read_npy(&p).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn reads_numpy_files() {
        // np.asfortranarray([[1.5, 2, 3], [4, 5, -6.25]])
        let f = fixture("f64_fortran_2x3.npy").into_f64().unwrap();
        assert_eq!(f, arr2(&[[1.5, 2.0, 3.0], [4.0, 5.0, -6.25]]).into_dyn());
        let z = fixture("i32_0d.npy");
        assert_eq!(z.shape(), &[] as &[usize]);
        assert_eq!(z.into_i32().unwrap(), arr0(7).into_dyn());
        let b = fixture("bool_4.npy").into_bool().unwrap();
        assert_eq!(b, arr1(&[true, false, false, true]).into_dyn());
        let i = fixture("i64_2x2x2.npy").into_i64().unwrap();
        let want = Array::from_shape_vec(IxDyn(&[2, 2, 2]), (-3..5).collect()).unwrap();
        assert_eq!(i, want);
        let be = fixture("f32_big_endian.npy").into_f32().unwrap();
        assert_eq!(be, arr1(&[1.5f32, -2.0, f32::INFINITY]).into_dyn());
        let v2 = fixture("f64_v2.npy").into_f64().unwrap();
        assert_eq!(v2[[0]], 0.25);
        assert!(v2[[1]].is_nan());
        assert_eq!(fixture("f64_empty_0x3.npy").shape(), &[0, 3]);
    }

    #[test]
    fn reads_the_small_and_unsigned_integer_dtypes() {
        // np.save('u8_3.npy', np.array([1, 2, 3], np.uint8))
        let a = fixture("u8_3.npy");
        assert_eq!(a.dtype(), DType::U8);
        let v: ndarray::Array1<u8> = a.into_array().unwrap();
        assert_eq!(v.to_vec(), vec![1, 2, 3]);
    }

    #[test]
    fn reads_float16_in_c_and_fortran_order_and_big_endian() {
        let f16 = |a: DynArray| -> Vec<f32> {
            let v: ndarray::ArrayD<crate::f16> = a.into_array().unwrap();
            v.iter().map(|x| crate::dtype::f16_to_f32(*x)).collect()
        };
        // np.save('f16_3.npy', np.array([1, 2, 3], np.float16))
        let a = fixture("f16_3.npy");
        assert_eq!(a.dtype(), DType::F16);
        assert_eq!(f16(a), vec![1.0, 2.0, 3.0]);
        // np.asfortranarray(np.array([[1.5, -0.0, 65504], [np.inf, 6e-8, 0.1]], np.float16))
        let a = fixture("f16_fortran.npy");
        assert_eq!(a.shape(), &[2, 3]);
        let v = f16(a);
        assert_eq!(v[..3], [1.5, -0.0, 65504.0]);
        assert!(v[1].is_sign_negative());
        assert_eq!(v[3..5], [f32::INFINITY, 2f32.powi(-24) * 1.0]);
        assert_eq!(v[5], 0.099975586); // float16(0.1)
                                       // np.array([1.5, -2.25, 0.1], '>f2')
        assert_eq!(
            f16(fixture("f16_big_endian.npy")),
            vec![1.5, -2.25, 0.099975586]
        );
    }

    #[test]
    fn other_dtypes_are_named() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        match read_npy(&dir.join("c8_unsupported.npy")) {
            Err(Error::UnsupportedDtype { dtype, context }) => {
                assert_eq!(dtype, "<c8");
                assert!(context.contains("c8_unsupported.npy"), "{context}");
            }
            other => panic!("{other:?}"),
        }
        match read_npy(&dir.join("structured_unsupported.npy")) {
            Err(Error::UnsupportedDtype { dtype, .. }) => {
                assert_eq!(dtype, "[('a', '<i4'), ('b', '<f8')]")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn round_trips_every_dtype_and_layout() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        let cases: Vec<DynArray> = vec![
            arr1(&[true, false]).into(),
            arr2(&[[1i32, -2], [3, i32::MIN]]).into(),
            arr0(i64::MAX).into(),
            arr1(&[1.5f32, f32::NAN]).into(),
            Array::from_shape_vec((2, 3).f(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
                .unwrap()
                .into(),
            arr2(&[[1.0, 2.0], [3.0, 4.0]])
                .slice_move(ndarray::s![.., ..;-1])
                .into(),
            Array::<f64, _>::zeros((0, 4)).into(),
            arr1(&[i8::MIN, -1, i8::MAX]).into(),
            arr2(&[[i16::MIN, 0], [7, i16::MAX]]).into(),
            arr1(&[0u8, 255]).into(),
            arr1(&[0u16, u16::MAX]).into(),
            arr1(&[0u32, u32::MAX]).into(),
            arr1(&[0u64, u64::MAX]).into(),
            arr1(&[
                crate::f16::from_bits(0x3c00),
                crate::f16::NAN,
                crate::f16::NEG_INFINITY,
            ])
            .into(),
            Array::from_shape_vec(
                (2, 2).f(),
                [1.0f32, -0.5, 6e-8, 65504.0]
                    .map(crate::dtype::f16_from_f32)
                    .to_vec(),
            )
            .unwrap()
            .into(),
        ];
        for a in cases {
            write_npy(&p, &a).unwrap();
            let b = read_npy(&p).unwrap();
            assert_eq!(b.dtype(), a.dtype());
            assert_eq!(b.shape(), a.shape());
            // NaN != NaN: compare the printed values instead of `==` for floats.
            assert_eq!(format!("{b:?}"), format!("{a:?}"));
        }
    }

    #[test]
    fn malformed_files_are_reported_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.npy");
        let header = |len: u16, text: &str| {
            let mut v = b"\x93NUMPY\x01\x00".to_vec();
            v.extend_from_slice(&len.to_le_bytes());
            v.extend_from_slice(text.as_bytes());
            v
        };
        let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }\n";
        let short = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n";
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"hello".to_vec(), "too short"),
            (b"PK\x03\x04 not npy at all".to_vec(), "magic"),
            (header(60000, "{'descr'"), "truncated header"),
            (header(dict.len() as u16, dict), "needs 8000000000000"),
            (header(short.len() as u16, short), "holds 0 data bytes"),
            (header(15, "{'shape': (2,)}"), "no 'descr'"),
        ];
        for (bytes, reason) in cases {
            std::fs::write(&p, &bytes).unwrap();
            match read_npy(&p) {
                Err(e @ Error::Npy { .. }) => {
                    let Error::Npy { path, message } = &e else {
                        unreachable!()
                    };
                    assert_eq!(path.as_deref(), Some(p.as_path()));
                    assert!(message.contains(reason), "{message} lacks {reason}");
                    assert!(e.to_string().contains(&p.display().to_string()), "{e}");
                }
                other => panic!("{reason}: {other:?}"),
            }
        }
        let mut v2 = b"\x93NUMPY\x02\x00".to_vec();
        v2.extend_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(&p, &v2).unwrap();
        assert!(
            matches!(read_npy(&p), Err(Error::Npy { message, .. }) if message.contains("longer than"))
        );
        let missing = dir.path().join("missing.npy");
        assert!(
            matches!(read_npy(&missing), Err(Error::Npy { path: Some(f), .. }) if f == missing)
        );
    }

    #[test]
    fn header_fields() {
        assert_eq!(parse_shape("(3, 4), }"), Some(vec![3, 4]));
        assert_eq!(parse_shape("(5,), }"), Some(vec![5]));
        assert_eq!(parse_shape("(), }"), Some(vec![]));
        assert_eq!(parse_shape("(x,)"), None);
        let h = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }";
        assert_eq!(dict_value(h, "descr").map(|s| &s[..5]), Some("'<f8'"));
        assert_eq!(
            descr_raw("[('a', '<i4'), ('b', '<f8')], 'fortran_order'"),
            "[('a', '<i4'), ('b', '<f8')]"
        );
    }
}
