//! The series front end on artificial series shaped like NAB's artificial set (5-minute rows, daily cycles,
//! noise, jumps, a level shift, a square wave): quiet where nothing happens, one alarm where something does.

use insights::Settings;
use insights::series::run_series;

const DAY: f64 = 288.0;

/// Alarm rows of a series of 4032 five-minute rows (two weeks) starting on an hour boundary.
fn alarms(f: impl Fn(i64) -> f64) -> Vec<usize> {
    let mut csv = String::from("timestamp,value\n");
    for i in 0..4032 {
        csv.push_str(&format!("{},{:.3}\n", 1_399_996_800 + i * 300, f(i)));
    }
    let mut out = Vec::new();
    run_series(csv.as_bytes(), &mut out, &Settings::default()).unwrap();
    let out = String::from_utf8(out).unwrap();
    out.lines().skip(1).enumerate().filter(|(_, l)| l.ends_with(",1")).map(|(i, _)| i).collect()
}

fn noise(i: i64) -> f64 {
    let x = ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64;
    x - 0.5
}

fn sine(i: i64) -> f64 {
    50.0 + 30.0 * (2.0 * std::f64::consts::PI * i as f64 / DAY).sin()
}

#[test]
fn quiet_series_raise_nothing() {
    assert_eq!(alarms(sine), Vec::<usize>::new());
    assert_eq!(alarms(|i| sine(i) + 5.0 * noise(i)), Vec::<usize>::new());
    assert_eq!(alarms(|_| 7.0), Vec::<usize>::new());
    assert_eq!(alarms(|i| 50.0 + 20.0 * noise(i)), Vec::<usize>::new());
}

#[test]
fn a_square_wave_alarms_only_before_its_shape_is_learned() {
    let a = alarms(|i| if (i / 144) % 2 == 0 { 20.0 } else { 80.0 });
    assert!(a.iter().all(|&i| i < 300), "{a:?}");
}

#[test]
fn jumps_and_shifts_alarm_once_where_they_start() {
    assert_eq!(alarms(|i| sine(i) + 5.0 * noise(i) + if (3000..3100).contains(&i) { 40.0 } else { 0.0 }), [3000]);
    assert_eq!(alarms(|i| sine(i) + 5.0 * noise(i) - if (3000..3100).contains(&i) { 30.0 } else { 0.0 }), [3000]);
    assert_eq!(alarms(|i| 50.0 + 5.0 * noise(i) + if i > 2500 { 30.0 } else { 0.0 }), [2501]);
    let spike = |i: i64| (20.0 + 8.0 * noise(i)).round() + if (3000..3010).contains(&i) { 60.0 } else { 0.0 };
    assert_eq!(alarms(spike), [3000]);
}
