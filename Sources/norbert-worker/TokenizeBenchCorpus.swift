import Foundation
import Tensors
import Wire

/// Deterministic Norwegian-like text for the tokenizer benchmark.
enum BenchCorpus {
    static let words: [String] = """
        og i det som på er en til av for at med har de ikke den han om var jeg fra men vi kan så etter \
        ut skal også hun når eller ble seg sier mot inn dette hadde nå bare kommer mange blir år andre \
        norsk norske Norge Oslo Bergen Trondheim Tromsø Stavanger Kristiansand Bodø Ålesund Hammerfest \
        regjeringen Stortinget kommunen fylket statsbudsjettet helsevesenet sykehuset skolen barnehagen \
        universitetet forskere studentene språkmodeller Nasjonalbiblioteket NorBERT bokmål nynorsk samisk \
        været regnet snøen fjellet fjorden havet skogen byen landet veien jernbanen flyplassen brua \
        kjøpte solgte bygde reiste snakket skrev leste lærte arbeidet spiste drakk sov løp syklet \
        hytte båt fisk torsk laks sild rein elg ulv bjørn fugl hest ku sau geit hund katt \
        kunnskap utdanning arbeidsplasser næringsliv oljefondet pensjon skatt avgift tilskudd lønn \
        ikkje eg ho dei kva korleis kvifor berre heile kjem vere vore gjere sjå fekk tok \
        dagen morgen kvelden natta våren sommeren hausten høsten vinteren januar februar mars april mai juni \
        juli august september oktober november desember mandag tirsdag onsdag torsdag fredag lørdag søndag \
        første andre tredje fjerde hundre tusen millioner milliarder prosent kroner kilometer timer minutter \
        blåbærsyltetøy sjøsprøyte kjøttkaker brunost lefse rømmegrøt pinnekjøtt lutefisk smørbrød vafler \
        Ærlig øyeblikk åpenbart ærverdig øksehogg åkerland Æsop Øystein Åse ÆØÅ æøå
        """.split(separator: " ").map(String.init)

    static let punctuation = [".", ".", ".", ",", ",", "!", "?", ":", ";", " –", " —", "…"]

    /// Sentences from the fixture cases (texts between 20 and 2,000 characters, deduplicated).
    static func fixtureSentences(_ path: String) -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        var seen = Set<String>()
        var out: [String] = []
        func add(_ v: JSONValue?) {
            guard let s = v?.stringValue else { return }
            let n = s.unicodeScalars.count
            guard n >= 20, n <= 2000, !s.contains("\n"), seen.insert(s).inserted else { return }
            out.append(s)
        }
        for line in data.split(separator: 0x0A) {
            guard let j = try? JSONValue.parse(Array(line)), let input = j["input"] else { continue }
            add(input["text"])
            add(input["text_pair"])
            for item in input["batch"]?.arrayValue ?? [] {
                add(item["text"])
                add(item["text_pair"])
            }
        }
        return out
    }

    static func generate(casesFile: String, bytes: Int, seed: UInt64) -> [String] {
        var rng = SplitMix64(seed: seed)
        var sentences = fixtureSentences(casesFile)
        // Fisher–Yates with the fixed seed.
        if sentences.count > 1 {
            for i in stride(from: sentences.count - 1, to: 0, by: -1) { sentences.swapAt(i, rng.below(i + 1)) }
        }
        var lines: [String] = []
        var total = 0
        var k = 0
        while total < bytes {
            var line = ""
            for _ in 0..<(1 + rng.below(4)) {
                if !sentences.isEmpty && rng.below(3) == 0 {
                    line += sentences[k % sentences.count] + " "
                    k += 1
                } else {
                    var w = words[rng.below(words.count)]
                    if let f = w.unicodeScalars.first, f.properties.isLowercase { w = w.prefix(1).uppercased() + w.dropFirst() }
                    line += w
                    for _ in 0..<(4 + rng.below(14)) {
                        line += " " + words[rng.below(words.count)]
                        if rng.below(9) == 0 { line += punctuation[rng.below(punctuation.count)] }
                        if rng.below(25) == 0 { line += " \(rng.below(3000))" }
                    }
                    line += ". "
                }
            }
            line.removeLast()
            total += line.utf8.count + 1
            lines.append(line)
        }
        return lines
    }
}
