//! The GPT scorer on a real (randomly initialised) tiny model: batched, right-padded scoring
//! equals one-at-a-time scoring and a direct log-softmax over `Gpt::forward`.

use candle_core::{Device, IndexOp, Tensor, D};
use syllabus::eval::{score_all, GptScorer, Request, Score, Scorer};
use syllabus::model::{Gpt, GptConfig, Params};
use syllabus::rng::Rng;

fn tiny_gpt() -> Gpt {
    let cfg = GptConfig {
        vocab_size: 97,
        n_positions: 16,
        n_layer: 2,
        n_head: 2,
        d_model: 16,
    };
    let params = Params::init_gpt2(&cfg, &mut Rng::new(3), &Device::Cpu).expect("init");
    Gpt::new_inference(&cfg, &params).expect("model")
}

fn requests() -> Vec<Request> {
    let mut rng = Rng::new(11);
    let mut draw = |n: usize| -> Vec<u32> { (0..n).map(|_| rng.below(97) as u32).collect() };
    // Lengths chosen so batches mix short and long rows (much padding) and one needs cutting.
    [
        (1, 1),
        (3, 2),
        (9, 4),
        (2, 7),
        (14, 3),
        (5, 1),
        (20, 2),
        (1, 15),
    ]
    .iter()
    .map(|&(c, x)| Request::new(draw(c), draw(x)))
    .collect()
}

/// Sum of log-softmax over `Gpt::forward` for one request that fits the context.
fn reference(gpt: &Gpt, r: &Request) -> (f64, bool) {
    let tokens: Vec<u32> = r.context.iter().chain(&r.continuation).copied().collect();
    let input = &tokens[..tokens.len() - 1];
    let x = Tensor::new(input, &Device::Cpu)
        .expect("ids")
        .unsqueeze(0)
        .expect("[1, T]");
    let logits = gpt.forward(&x).expect("forward").i(0).expect("[T, V]");
    let logp = candle_nn::ops::log_softmax(&logits, D::Minus1).expect("log_softmax");
    let logp: Vec<Vec<f32>> = logp.to_vec2().expect("to_vec2");
    let mut sum = 0.0;
    let mut greedy = true;
    for (j, &tok) in r.continuation.iter().enumerate() {
        let row = &logp[r.context.len() - 1 + j];
        sum += row[tok as usize] as f64;
        let best = (0..row.len()).fold(0, |b, i| if row[i] > row[b] { i } else { b });
        greedy &= best == tok as usize;
    }
    (sum, greedy)
}

fn close(a: &Score, b: &Score) -> bool {
    (a.logprob - b.logprob).abs() <= 1e-4 * (1.0 + a.logprob.abs())
        && a.tokens == b.tokens
        && a.greedy == b.greedy
}

#[test]
fn padding_and_batching_do_not_change_scores() {
    let gpt = tiny_gpt();
    let scorer = GptScorer::new(&gpt, 16, &Device::Cpu).expect("scorer");
    let reqs = requests();
    let one = score_all(&scorer, &reqs, 1).expect("unbatched");
    for batch in [3, 8] {
        let many = score_all(&scorer, &reqs, batch).expect("batched");
        for (i, (a, b)) in one.iter().zip(&many).enumerate() {
            assert!(close(a, b), "request {i}, batch {batch}: {a:?} vs {b:?}");
        }
    }
    for (r, s) in reqs.iter().zip(&one) {
        let fitted = r.fitted(16);
        let (lp, greedy) = reference(&gpt, &fitted);
        assert!(
            (lp - s.logprob).abs() < 1e-4 * (1.0 + lp.abs()),
            "{lp} vs {}",
            s.logprob
        );
        assert_eq!(greedy, s.greedy);
        assert_eq!(s.tokens, fitted.continuation.len());
    }
}

#[test]
fn greedy_flag_is_true_exactly_for_the_argmax_continuation() {
    let gpt = tiny_gpt();
    let scorer = GptScorer::new(&gpt, 16, &Device::Cpu).expect("scorer");
    // Decode greedily three tokens after a context, then score that continuation.
    let mut tokens = vec![5u32, 17, 42];
    for _ in 0..3 {
        let x = Tensor::new(tokens.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let last = gpt.forward(&x).unwrap().i((0, tokens.len() - 1)).unwrap();
        tokens.push(last.argmax(D::Minus1).unwrap().to_scalar::<u32>().unwrap());
    }
    let greedy = Request::new(tokens[..3].to_vec(), tokens[3..].to_vec());
    let mut other = greedy.clone();
    other.continuation[2] = (other.continuation[2] + 1) % 97;
    let s = scorer.score_batch(&[greedy, other]).expect("score");
    assert!(s[0].greedy && !s[1].greedy);
    assert!(s[0].logprob > s[1].logprob);
}

#[test]
fn scorer_rejects_requests_that_do_not_fit() {
    let gpt = tiny_gpt();
    assert!(GptScorer::new(&gpt, 17, &Device::Cpu).is_err());
    let scorer = GptScorer::new(&gpt, 8, &Device::Cpu).expect("scorer");
    let long = Request::new(vec![1; 8], vec![2, 3]);
    let msg = scorer.score_batch(&[long]).unwrap_err().to_string();
    assert!(msg.contains("model context 8"), "{msg}");
}
