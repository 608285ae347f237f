#!/usr/bin/env python3
# Regenerates Tests/Fixtures/tokenizer-extra/: extra tokenizer.json configurations (normalizers,
# pre-tokenizers, models, post-processors and decoders the two main fixtures do not use), with
# expected outputs from the Hugging Face `tokenizers` package (0.23.3). Run with a venv outside the
# repository: python3 -m venv /tmp/venv-tok && /tmp/venv-tok/bin/pip install tokenizers==0.23.3
# then /tmp/venv-tok/bin/python scripts/gen-tokenizer-extra-fixtures.py
import json, os, random, copy
from tokenizers import Tokenizer, normalizers as N, pre_tokenizers as P, decoders as D, processors as PP, models as M, trainers as T, AddedToken
import sys
FX=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'Tests', 'Fixtures') + '/'
OUT=FX + 'tokenizer-extra/'
cases=[json.loads(l) for l in open(FX+'tokenizer/cases.jsonl')]
texts=[]
for c in cases:
    if c['kind']=='encode':
        texts.append(c['input']['text'])
        if c['input']['text_pair']: texts.append(c['input']['text_pair'])
texts=list(dict.fromkeys(texts))
texts=[t for t in texts if len(t)<3000]
random.seed(1)
def emit(name, tok):
    d=OUT+name; os.makedirs(d, exist_ok=True)
    tok.save(d+'/tokenizer.json')
    tok=Tokenizer.from_file(d+'/tokenizer.json')
    out=[]
    def enc(text, pair, add, trunc=None):
        tok.no_truncation(); tok.no_padding()
        inp={'text':text,'text_pair':pair,'add_special_tokens':add,'truncation':trunc,'padding':None}
        try:
            if trunc: tok.enable_truncation(**trunc)
            e=tok.encode(text, pair, add_special_tokens=add)
            def ej(e, ov):
                r={'ids':e.ids,'tokens':e.tokens,'offsets':[list(o) for o in e.offsets],'type_ids':e.type_ids,'special_tokens_mask':e.special_tokens_mask,'attention_mask':e.attention_mask,'word_ids':e.word_ids,'sequence_ids':e.sequence_ids}
                if ov: r['overflowing']=[ej(o, True) for o in e.overflowing]
                return r
            exp=ej(e, trunc is not None)
        except BaseException as ex:
            exp={'error':str(ex)}
        out.append({'id':name+str(len(out)),'kind':'encode','tag':'x','input':inp,'expected':exp})
        return exp
    for t in texts:
        e=enc(t, None, True)
        if 'ids' in e:
            for skip in (True, False):
                out.append({'id':name+str(len(out)),'kind':'decode','tag':'d','input':{'ids':e['ids'],'skip_special_tokens':skip},'expected':{'text':tok.decode(e['ids'], skip_special_tokens=skip)}})
    for i in range(30):
        a,b=random.choice(texts),random.choice(texts)
        enc(a,b,True)
        enc(a,b,True,{'max_length':random.randint(8,40),'stride':random.randint(0,4),'strategy':random.choice(['longest_first','only_second']),'direction':random.choice(['left','right'])})
    with open(d+'/cases.jsonl','w') as f:
        for c in out: f.write(json.dumps(c)+'\n')

wp=json.load(open(FX+'tokenizer-wordpiece/tokenizer.json'))
bpe=json.load(open(FX+'tokenizer/tokenizer.json'))
def from_json(j): return Tokenizer.from_str(json.dumps(j))

# A
t=from_json(wp)
t.normalizer=N.Sequence([N.NFD(), N.Lowercase(), N.StripAccents(), N.Replace("æ","ae")])
t.pre_tokenizer=P.Sequence([P.Whitespace(), P.Digits(individual_digits=True), P.Punctuation()])
t.post_processor=PP.BertProcessing(("[SEP]",3),("[CLS]",2))
t.decoder=D.WordPiece(cleanup=False)
t.add_tokens([AddedToken("oslo", single_word=True, normalized=True), AddedToken("[MASK]", lstrip=True, rstrip=True, special=True, normalized=False)])
emit('wordpiece-nfd-lowercase-bertprocessing', t)
# B
t=from_json(wp)
t.normalizer=N.Sequence([N.NFKD(), N.Strip(), N.NFC()])
t.pre_tokenizer=P.Sequence([P.WhitespaceSplit(), P.Split(" ?[0-9]+", behavior="merged_with_previous"), P.Split("e", behavior="merged_with_next", invert=False), P.Split(P.__dict__.get('x','-'), behavior="contiguous")])
t.post_processor=PP.TemplateProcessing(single="[CLS]:0 $A:0 [SEP]:0", pair="[CLS]:0 $A:0 [SEP]:0 [SEP]:1 $B:1 [SEP]:1", special_tokens=[("[CLS]",2),("[SEP]",3)])
emit('wordpiece-splits-template-string', t)
# C roberta byte level
t=from_json(bpe)
t.normalizer=None
t.pre_tokenizer=P.ByteLevel(add_prefix_space=True, use_regex=True)
t.post_processor=PP.RobertaProcessing(("</s>",2),("<s>",1), trim_offsets=True, add_prefix_space=True)
t.decoder=D.ByteLevel()
emit('bytelevel-roberta', t)
# C2 bytelevel postprocessor
t=from_json(bpe)
t.pre_tokenizer=P.ByteLevel(add_prefix_space=False, use_regex=True)
t.post_processor=PP.ByteLevel(trim_offsets=True)
t.decoder=D.ByteLevel()
emit('bytelevel-postprocessor', t)
# D unigram + metaspace
t=Tokenizer(M.Unigram())
t.normalizer=N.NFKC()
t.pre_tokenizer=P.Metaspace()
t.decoder=D.Metaspace()
t.train_from_iterator(texts, T.UnigramTrainer(vocab_size=400, special_tokens=["<unk>","<s>"], unk_token="<unk>"))
emit('unigram-metaspace', t)
# E BPE with prefix/suffix + byte fallback
t=Tokenizer(M.BPE(unk_token="[UNK]", continuing_subword_prefix="##", end_of_word_suffix="</w>", fuse_unk=True))
t.normalizer=N.Lowercase()
t.pre_tokenizer=P.Whitespace()
t.decoder=D.BPEDecoder()
t.train_from_iterator(texts, T.BpeTrainer(vocab_size=500, special_tokens=["[UNK]"], continuing_subword_prefix="##", end_of_word_suffix="</w>", limit_alphabet=60))
emit('bpe-prefix-suffix-fuse-unk', t)
# F BPE byte_fallback sentencepiece-like
t=Tokenizer(M.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
t.normalizer=N.Sequence([N.Prepend("▁"), N.Replace(" ","▁")])
t.pre_tokenizer=None
t.decoder=D.Sequence([D.Replace("▁"," "), D.ByteFallback(), D.Fuse(), D.Strip(" ",1,0)])
tr=T.BpeTrainer(vocab_size=400, special_tokens=["<unk>","<s>"]+["<0x%02X>"%i for i in range(256)], limit_alphabet=50)
t.train_from_iterator(texts, tr)
emit('bpe-byte-fallback', t)
print('ok')
