//! Constant tables of the math expansions, read by [`crate::kir::Inst::Lookup`].
//!
//! `EXP2_128_HI[j]` is `2^(j/128)` rounded to the nearest float64 and `EXP2_128_LO[j]` the
//! rest, `2^(j/128) - EXP2_128_HI[j]` rounded (together ~107 bits); both as IEEE bits.
//! Computed in 300-bit arithmetic (mpmath): `hi = float(2**(j/128))`, `lo = float(2**(j/128) -
//! hi)`. The test below checks every entry against `exp2` in float64 and the pair's sum in
//! double-double arithmetic.
//!
//! `TWO_OVER_PI_32` and `TWO_OVER_PI_16` hold the binary digits of `2/pi` for the Payne-Hanek
//! reduction of `sin`, `cos`, `tan` on targets without scalar calls (`trig.rs`): 32 (16) bits
//! per entry, most significant first, after 64 (16) zero bits, so that entry `i` bit `b`
//! (from the top) is the digit of weight `2^-(32 i + b - 63)` (`2^-(16 i + b - 15)`).
//! Computed as `floor(2/pi * 2^2100)` in 3000-bit arithmetic (mpmath); the tests below check
//! that both tables hold the same digits and that they begin with `FRAC_2_PI`.

pub(crate) static EXP2_128_HI: [u64; 128] = [
    0x3ff0000000000000,
    0x3ff0163da9fb3335,
    0x3ff02c9a3e778061,
    0x3ff04315e86e7f85,
    0x3ff059b0d3158574,
    0x3ff0706b29ddf6de,
    0x3ff0874518759bc8,
    0x3ff09e3ecac6f383,
    0x3ff0b5586cf9890f,
    0x3ff0cc922b7247f7,
    0x3ff0e3ec32d3d1a2,
    0x3ff0fb66affed31b,
    0x3ff11301d0125b51,
    0x3ff12abdc06c31cc,
    0x3ff1429aaea92de0,
    0x3ff15a98c8a58e51,
    0x3ff172b83c7d517b,
    0x3ff18af9388c8dea,
    0x3ff1a35beb6fcb75,
    0x3ff1bbe084045cd4,
    0x3ff1d4873168b9aa,
    0x3ff1ed5022fcd91d,
    0x3ff2063b88628cd6,
    0x3ff21f49917ddc96,
    0x3ff2387a6e756238,
    0x3ff251ce4fb2a63f,
    0x3ff26b4565e27cdd,
    0x3ff284dfe1f56381,
    0x3ff29e9df51fdee1,
    0x3ff2b87fd0dad990,
    0x3ff2d285a6e4030b,
    0x3ff2ecafa93e2f56,
    0x3ff306fe0a31b715,
    0x3ff32170fc4cd831,
    0x3ff33c08b26416ff,
    0x3ff356c55f929ff1,
    0x3ff371a7373aa9cb,
    0x3ff38cae6d05d866,
    0x3ff3a7db34e59ff7,
    0x3ff3c32dc313a8e5,
    0x3ff3dea64c123422,
    0x3ff3fa4504ac801c,
    0x3ff4160a21f72e2a,
    0x3ff431f5d950a897,
    0x3ff44e086061892d,
    0x3ff46a41ed1d0057,
    0x3ff486a2b5c13cd0,
    0x3ff4a32af0d7d3de,
    0x3ff4bfdad5362a27,
    0x3ff4dcb299fddd0d,
    0x3ff4f9b2769d2ca7,
    0x3ff516daa2cf6642,
    0x3ff5342b569d4f82,
    0x3ff551a4ca5d920f,
    0x3ff56f4736b527da,
    0x3ff58d12d497c7fd,
    0x3ff5ab07dd485429,
    0x3ff5c9268a5946b7,
    0x3ff5e76f15ad2148,
    0x3ff605e1b976dc09,
    0x3ff6247eb03a5585,
    0x3ff6434634ccc320,
    0x3ff6623882552225,
    0x3ff68155d44ca973,
    0x3ff6a09e667f3bcd,
    0x3ff6c012750bdabf,
    0x3ff6dfb23c651a2f,
    0x3ff6ff7df9519484,
    0x3ff71f75e8ec5f74,
    0x3ff73f9a48a58174,
    0x3ff75feb564267c9,
    0x3ff780694fde5d3f,
    0x3ff7a11473eb0187,
    0x3ff7c1ed0130c132,
    0x3ff7e2f336cf4e62,
    0x3ff80427543e1a12,
    0x3ff82589994cce13,
    0x3ff8471a4623c7ad,
    0x3ff868d99b4492ed,
    0x3ff88ac7d98a6699,
    0x3ff8ace5422aa0db,
    0x3ff8cf3216b5448c,
    0x3ff8f1ae99157736,
    0x3ff9145b0b91ffc6,
    0x3ff93737b0cdc5e5,
    0x3ff95a44cbc8520f,
    0x3ff97d829fde4e50,
    0x3ff9a0f170ca07ba,
    0x3ff9c49182a3f090,
    0x3ff9e86319e32323,
    0x3ffa0c667b5de565,
    0x3ffa309bec4a2d33,
    0x3ffa5503b23e255d,
    0x3ffa799e1330b358,
    0x3ffa9e6b5579fdbf,
    0x3ffac36bbfd3f37a,
    0x3ffae89f995ad3ad,
    0x3ffb0e07298db666,
    0x3ffb33a2b84f15fb,
    0x3ffb59728de5593a,
    0x3ffb7f76f2fb5e47,
    0x3ffba5b030a1064a,
    0x3ffbcc1e904bc1d2,
    0x3ffbf2c25bd71e09,
    0x3ffc199bdd85529c,
    0x3ffc40ab5fffd07a,
    0x3ffc67f12e57d14b,
    0x3ffc8f6d9406e7b5,
    0x3ffcb720dcef9069,
    0x3ffcdf0b555dc3fa,
    0x3ffd072d4a07897c,
    0x3ffd2f87080d89f2,
    0x3ffd5818dcfba487,
    0x3ffd80e316c98398,
    0x3ffda9e603db3285,
    0x3ffdd321f301b460,
    0x3ffdfc97337b9b5f,
    0x3ffe264614f5a129,
    0x3ffe502ee78b3ff6,
    0x3ffe7a51fbc74c83,
    0x3ffea4afa2a490da,
    0x3ffecf482d8e67f1,
    0x3ffefa1bee615a27,
    0x3fff252b376bba97,
    0x3fff50765b6e4540,
    0x3fff7bfdad9cbe14,
    0x3fffa7c1819e90d8,
    0x3fffd3c22b8f71f1,
];
pub(crate) static EXP2_128_LO: [u64; 128] = [
    0x0000000000000000,
    0x3c9b61299ab8cdb7,
    0xbc719083535b085d,
    0xbc90a31c1977c96e,
    0x3c8d73e2a475b465,
    0xbc8c91dfe2b13c27,
    0x3c6186be4bb284ff,
    0x3c91487818316136,
    0x3c98a62e4adc610b,
    0x3c901edc16e24f71,
    0x3c403a1727c57b53,
    0xbc6b9bedc44ebd7b,
    0xbc96c51039449b3a,
    0xbc51b514b36ca5c7,
    0xbc932fbf9af1369e,
    0x3c82406ab9eeab0a,
    0xbc819041b9d78a76,
    0xbc911023d1970f6c,
    0x3c8e5b4c7b4968e4,
    0xbc995386352ef607,
    0x3c9e016e00a2643c,
    0xbc91df98027bb78c,
    0x3c8dc775814a8495,
    0x3c82a97e9494a5ee,
    0x3c99b07eb6c70573,
    0x3c8ac155bef4f4a4,
    0x3c82bd339940e9d9,
    0xbc9a4c3a8c3f0d7e,
    0x3c8612e8afad1255,
    0xbc410adcd6381aa4,
    0x3c90024754db41d5,
    0x3c71ca0f45d52383,
    0x3c86f46ad23182e4,
    0x3c8a9ce78e18047c,
    0x3c932721843659a6,
    0xbc8b5cee5c4e4628,
    0xbc963aeabf42eae2,
    0xbc9e958d3c9904bd,
    0xbc75e436d661f5e3,
    0xbc9efff8375d29c3,
    0x3c8ada0911f09ebc,
    0xbc97d023f956f9f3,
    0xbc5ef3691c309278,
    0xbc81c7dde35f7999,
    0x3c489b7a04ef80d0,
    0x3c9c944bd1648a76,
    0x3c73c1a3b69062f0,
    0x3c99cb62f3d1be56,
    0x3c7d4397afec42e2,
    0x3c98ecdbbc6a7833,
    0xbc94b309d25957e3,
    0xbc8f768569bd93ef,
    0xbc807abe1db13cad,
    0xbc8d689cefede59b,
    0x3c99bb2c011d93ad,
    0x3c8295e15b9a1de8,
    0x3c96324c054647ad,
    0x3c3c4b1b816986a2,
    0x3c9ba6f93080e65e,
    0xbc93e2429b56de47,
    0xbc9383c17e40b497,
    0xbc8c483c759d8933,
    0xbc9bb60987591c34,
    0x3c6038ae44f73e65,
    0xbc9bdd3413b26456,
    0xbc72895667ff0b0d,
    0xbc6bbe3a683c88ab,
    0xbc883c0f25860ef6,
    0xbc816e4786887a99,
    0xbc90a8d96c65d53c,
    0xbc90245957316dd3,
    0x3c9866b80a02162d,
    0xbc841577ee04992f,
    0x3c9f124cd1164dd6,
    0x3c705d02ba15797e,
    0xbc927c86626d972b,
    0xbc9d4c1dd41532d8,
    0xbc88d684a341cdfb,
    0xbc9fc6f89bd4f6ba,
    0x3c9994c2f37cb53a,
    0x3c96e9f156864b27,
    0xbc70d55e32e9e3aa,
    0x3c85cc13a2e3976c,
    0xbc9dd6792e582524,
    0xbc675fc781b57ebc,
    0xbc764b7c96a5f039,
    0xbc9d185b7c1b85d1,
    0xbc9173bd91cee632,
    0x3c7c7c46b071f2be,
    0x3c7824ca78e64c6e,
    0xbc9359495d1cd533,
    0x3c96305c7ddc36ab,
    0xbc9d2f6edb8d41e1,
    0x3c9bcb7ecac563c7,
    0x3c90fac90ef7fd31,
    0xbc8f9234cae76cd0,
    0x3c97a1cd345dcc81,
    0xbc9bdef54c80e425,
    0xbc62805e3084d708,
    0xbc9c71dfbbba6de3,
    0xbc75584f7e54ac3b,
    0xbc9efcd30e54292e,
    0x3c823dd07a2d9e84,
    0xbc9efdca3f6b9c73,
    0x3c811065895048dd,
    0x3c9b4537e083c60a,
    0x3c92884dff483cad,
    0x3c71acbc48805c44,
    0x3c7503cbd1e949db,
    0xbc8dd83b53829d72,
    0xbc9cbc3743797a9c,
    0xbc9d487b719d8578,
    0x3c82ed02d75b3707,
    0xbc911ec18beddfe8,
    0x3c9c2300696db532,
    0x3c92da5778f018c3,
    0xbc91a5cd4f184b5c,
    0xbc97b627817a1496,
    0x3c839e8980a9cc8f,
    0x3c92d522ca0c8de2,
    0xbc9e9c23179c2893,
    0xbc9c93f3b411ad8c,
    0x3c9dc7f486a4b6b0,
    0x3c93a1a5bf0d8e43,
    0x3c99d3e12dd8a18b,
    0xbc9dbb12d006350a,
    0x3c874853f3a5931e,
    0x3c62eb74966579e7,
];

/// The digits of `2/pi` in 32-bit words after two zero words (see the module docs).
pub(crate) static TWO_OVER_PI_32: [u64; 64] = [
    0x00000000, 0x00000000, 0xa2f9836e, 0x4e441529, 0xfc2757d1, 0xf534ddc0, 0xdb629599, 0x3c439041,
    0xfe5163ab, 0xdebbc561, 0xb7246e3a, 0x424dd2e0, 0x06492eea, 0x09d1921c, 0xfe1deb1c, 0xb129a73e,
    0xe88235f5, 0x2ebb4484, 0xe99c7026, 0xb45f7e41, 0x3991d639, 0x835339f4, 0x9c845f8b, 0xbdf9283b,
    0x1ff897ff, 0xde05980f, 0xef2f118b, 0x5a0a6d1f, 0x6d367ecf, 0x27cb09b7, 0x4f463f66, 0x9e5fea2d,
    0x7527bac7, 0xebe5f17b, 0x3d0739f7, 0x8a5292ea, 0x6bfb5fb1, 0x1f8d5d08, 0x56033046, 0xfc7b6bab,
    0xf0cfbc20, 0x9af4361d, 0xa9e39161, 0x5ee61b08, 0x6599855f, 0x14a06840, 0x8dffd880, 0x4d732731,
    0x06061556, 0xca73a8c9, 0x60e27bc0, 0x8c6b47c4, 0x19c367cd, 0xdce8092a, 0x8359c476, 0x8b961ca6,
    0xddaf44d1, 0x5719053e, 0xa5ff0705, 0x3f7e33e8, 0x32c2de4f, 0x98327dbb, 0xc33d26ef, 0x6b1e5ef8,
];

/// The digits of `2/pi` in 16-bit words after one zero word (see the module docs).
pub(crate) static TWO_OVER_PI_16: [u64; 16] = [
    0x0000, 0xa2f9, 0x836e, 0x4e44, 0x1529, 0xfc27, 0x57d1, 0xf534, 0xddc0, 0xdb62, 0x9599, 0x3c43,
    0x9041, 0xfe51, 0x63ab, 0xdebb,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_two_to_the_j_over_128() {
        for j in 0..128 {
            let hi = f64::from_bits(EXP2_128_HI[j]);
            let lo = f64::from_bits(EXP2_128_LO[j]);
            let want = (j as f64 / 128.0).exp2();
            // glibc's exp2 is within 1 ULP; hi is the correctly rounded value.
            assert!((hi - want).abs() <= f64::EPSILON * want, "hi[{j}]");
            // lo is below half an ULP of hi, and (hi + lo)^128 == 2^j to ~2^-100: check
            // (hi + lo)^2 against entry 2j (for j < 64) in double-double.
            assert!(lo.abs() <= 0.5 * f64::EPSILON * hi, "lo[{j}]");
            if j < 64 {
                let (h2, l2) = (
                    f64::from_bits(EXP2_128_HI[2 * j]),
                    f64::from_bits(EXP2_128_LO[2 * j]),
                );
                let sq_hi = hi * hi;
                let sq_err = hi.mul_add(hi, -sq_hi);
                let sq = sq_hi + (sq_err + 2.0 * hi * lo);
                let sq_lo = (sq_hi - sq) + (sq_err + 2.0 * hi * lo);
                let err = ((sq - h2) + (sq_lo - l2)).abs();
                assert!(
                    err <= 1e-30,
                    "(2^({j}/128))^2 != 2^({}/128): {err:e}",
                    2 * j
                );
            }
        }
    }

    #[test]
    fn two_over_pi_tables_agree_and_start_with_frac_2_pi() {
        // The same digits: digit d (from 1) of 2/pi sits at bit d + 63 (from the top) of the
        // 32-bit table and at bit d + 15 of the 16-bit one.
        let digit32 = |d: usize| {
            let pos = d + 63;
            (TWO_OVER_PI_32[pos / 32] >> (31 - pos % 32)) & 1
        };
        let digit16 = |d: usize| {
            let pos = d + 15;
            (TWO_OVER_PI_16[pos / 16] >> (15 - pos % 16)) & 1
        };
        for d in 1..=240 - 15 {
            assert_eq!(digit32(d), digit16(d), "digit {d}");
        }
        assert!(TWO_OVER_PI_32.iter().all(|w| *w < 1 << 32));
        assert!(TWO_OVER_PI_16.iter().all(|w| *w < 1 << 16));
        assert_eq!(&TWO_OVER_PI_32[..2], &[0, 0]);
        assert_eq!(TWO_OVER_PI_16[0], 0);
        // The first 53 digits, rounded by the 54th (2/pi is irrational: never a tie), are
        // FRAC_2_PI's significand (2/pi = 0.1010...).
        let top = (1..=53).fold(0u64, |acc, d| (acc << 1) | digit32(d)) + digit32(54);
        assert_eq!(
            top as f64 / (1u64 << 53) as f64,
            std::f64::consts::FRAC_2_PI,
            "{top:#x}"
        );
    }
}
